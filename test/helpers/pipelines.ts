import type pg from "pg";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { asTenant } from "../../src/cli/pipeline.ts";
// bigint counts as numbers, as every pool of the server reads them (the files that do not start
// a server would otherwise see strings).
import "../../src/db/pgTypes.ts";
import { startShopApi } from "../../src/demo/shopApi.ts";
import { readPipelineFile } from "../../src/pipelines/definition.ts";
import { pollRun } from "../../src/pipelines/pollRun.ts";
import type { WorkerHandle, WorkerOptions } from "../../src/worker/index.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";
import { lateBound } from "./setup.ts";
import { startTestWorker } from "./worker.ts";

/** The example pipeline (src/demo/pipeline): an HTTP source with two entities and two models. */
export const EXAMPLE_PIPELINE = "src/demo/pipeline/pipeline.yaml";

type Run = { status: string } & Record<string, any>;

export type ShopApi = Awaited<ReturnType<typeof startShopApi>>;

/**
 * What the pipeline test files start with: their own database with t_acme__shop_api
 * provisioned, and the shop API the example pipeline reads (answers 429 to every 7th request,
 * fails page 3 once, wants the bearer token the example's secret holds).
 */
export async function setUpPipelineFile(): Promise<{ db: TestDatabase; api: ShopApi }> {
  const db = await createTestDatabase();
  const api = await startShopApi({ rateLimitEvery: 7, failPageOnce: 3, token: "shop-secret-token" });
  await pipelineHelpers(() => db).provision("acme", "shop_api");
  return { db, api };
}

/**
 * A pipeline test file's setting, registered once at its top: its database and shop API
 * (setUpPipelineFile) before its tests, a worker slot (testWorkers), and after its tests the
 * worker stopped, the API closed and the database dropped, in that order.
 */
export function usePipelineFile() {
  const db = lateBound<TestDatabase>("the test database");
  const api = lateBound<ShopApi>("the shop API");
  const workers = testWorkers(() => db.handle);
  let made: { db: TestDatabase; api: ShopApi } | undefined;
  beforeAll(async () => {
    made = await setUpPipelineFile();
    db.set(made.db);
    api.set(made.api);
  });
  afterAll(async () => {
    await workers.stop();
    await made?.api.close();
    await made?.db.drop();
  });
  return { db: db.handle, api: api.handle, workers, ...pipelineHelpers(() => db.handle, () => api.handle.url) };
}

/**
 * The pipeline worker of a test file, logged in as sextant_worker: `start` stops the one
 * before; each is stopped after its test (and by `stop`, which the file's afterAll calls
 * before dropping the database).
 */
export function testWorkers(getDb: () => TestDatabase) {
  let current: WorkerHandle | undefined;
  const stop = async () => {
    await current?.stop();
    current = undefined;
  };
  afterEach(stop);
  return {
    /** Defaults as most tests want them: two jobs at once, sources on loopback allowed. */
    async start(opts: Partial<Omit<WorkerOptions, "databaseUrl">> = {}): Promise<WorkerHandle> {
      await stop();
      current = await startTestWorker(getDb(), { concurrency: 2, staleMs: 30000, allowHosts: ["127.0.0.1:*"], ...opts });
      return current;
    },
    /** Forgets the running worker (the test stopped it itself). */
    forget(): void {
      current = undefined;
    },
    stop,
  };
}

/**
 * Helpers for tests of pipelines and runs, bound to a file's test database (read when called,
 * so they can be made before `beforeAll` creates it) and the shop API the example reads.
 */
export function pipelineHelpers(getDb: () => TestDatabase, getApiUrl: () => string = () => "http://127.0.0.1:9") {
  /** As the tenant's admin, in a transaction that commits (like the CLI). */
  async function asAdmin<T>(tenant: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await getDb().admin.connect();
    try {
      return await asTenant(client, tenant, "admin", () => fn(client));
    } finally {
      client.release();
    }
  }

  async function provision(tenant: string, name: string) {
    return asAdmin(tenant, async (c) => (await c.query("select * from sextant.provision_schema($1)", [name])).rows[0]);
  }

  /** The example pipeline for `tenant` into t_<tenant>__shop_api, with its secret stored. */
  async function definePipeline(tenant: string, overrides: Record<string, unknown> = {}, apiUrl = getApiUrl()) {
    process.env.SHOP_API_URL = apiUrl;
    process.env.SHOP_API_AUTH_HEADER = "Bearer shop-secret-token";
    const { definition } = readPipelineFile(EXAMPLE_PIPELINE);
    const def = { ...definition, target_schema: `t_${tenant}__shop_api`, schedule: undefined, ...overrides };
    return asAdmin(tenant, async (c) => {
      const { rows } = await c.query("select * from sextant.create_pipeline($1)", [JSON.stringify(def)]);
      await c.query("select sextant.set_pipeline_secret($1, 'shop_auth_header', 'Bearer shop-secret-token')", [def.name]);
      return rows[0];
    });
  }

  async function requestRun(tenant: string, pipeline: string, entities: string[] | null = null): Promise<number> {
    return asAdmin(tenant, async (c) => (await c.query("select id from sextant.run_materialization($1, $2)", [pipeline, entities])).rows[0].id);
  }

  /** The run's row, read as the admin (no RLS). */
  async function status(runId: number): Promise<Run> {
    return (await getDb().admin.query("select * from sextant.materialization_runs where id = $1", [runId])).rows[0];
  }

  /** Polls the run until `ok` holds; fails with `why(status)` when `timeoutMs` pass. */
  async function waitUntil(runId: number, ok: (r: Run) => boolean, timeoutMs = 20000,
    why = (s: Run) => `run ${runId}: condition not met (${s.status}, ${s.current_step}, ${s.error ?? ""})`): Promise<Run> {
    const s = await pollRun(() => status(runId), { done: ok, deadline: Date.now() + timeoutMs, intervalMs: 150 });
    if (!s) throw new Error(`run ${runId} does not exist`);
    if (!ok(s)) throw new Error(why(s));
    return s;
  }

  /** Polls the run until it is in one of `states`. */
  async function waitFor(runId: number, states: string[], timeoutMs = 30000): Promise<Run> {
    return waitUntil(runId, (s) => states.includes(s.status), timeoutMs,
      (s) => `run ${runId} is still ${s.status} (${s.current_step}; ${s.error ?? ""})`);
  }

  async function count(sql: string): Promise<number> {
    return (await getDb().admin.query(`select count(*)::int as n from ${sql}`)).rows[0].n;
  }

  return { asAdmin, provision, definePipeline, requestRun, status, waitUntil, waitFor, count };
}

/** Expects `sql` to fail with `code`, inside a savepoint so the transaction goes on. */
export async function refusedInTx(c: pg.ClientBase, sql: string, code: string): Promise<void> {
  await c.query("savepoint t");
  await expect(c.query(sql)).rejects.toMatchObject({ code });
  await c.query("rollback to savepoint t");
}
