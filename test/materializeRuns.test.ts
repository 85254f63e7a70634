import { spawn } from "node:child_process";
import { describe, expect, test } from "vitest";
import { startShopApi } from "../src/demo/shopApi.ts";
import { SEXTANT_BIN } from "./helpers/cli.ts";
import { asRole, withTx } from "./helpers/db.ts";
import { refusedInTx as refused, usePipelineFile } from "./helpers/pipelines.ts";

// Runs of the example pipeline through the real worker: loading, failing, cancelling, attempts
// taken over, a worker killed or stopped in the middle.

const { db, workers, asAdmin, provision, definePipeline, requestRun, status, waitFor, waitUntil, count } = usePipelineFile();
const startTestWorker = (staleMs?: number) => workers.start(staleMs === undefined ? {} : { staleMs });

describe("runs", () => {
  test("a run loads both entities through 429s and a failing page, builds the models, and reports freshness", async () => {
    await definePipeline("acme");
    await startTestWorker();
    const runId = await requestRun("acme", "shop_api");
    const done = await waitFor(runId, ["succeeded", "failed"]);
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(done.progress.customers).toMatchObject({ rows: 120, done: true });
    expect(done.progress.orders).toMatchObject({ rows: 400, done: true });
    expect(await count("t_acme__shop_api.customers")).toBe(120);
    expect(await count("t_acme__shop_api.orders")).toBe(400);
    // Inferred columns: camelCase to snake_case, nested objects as jsonb, the record kept in _raw.
    const cols = (await db.admin.query(
      "select column_name, data_type from information_schema.columns where table_schema = 't_acme__shop_api' and table_name = 'customers' order by ordinal_position",
    )).rows;
    expect(cols).toEqual(expect.arrayContaining([
      { column_name: "id", data_type: "bigint" },
      { column_name: "signed_up_at", data_type: "timestamp with time zone" },
      { column_name: "vip", data_type: "boolean" },
      { column_name: "address", data_type: "jsonb" },
      { column_name: "_raw", data_type: "jsonb" },
    ]));
    // The models, readable by the tenant (and only by it).
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme");
      const top = (await c.query("select * from sextant.query('select count(*) as n from t_acme__shop_api.top_customers')")).rows[0];
      expect(top.rows[0].n).toBe(10);
      const d = (await c.query("select freshness from sextant.describe_table('t_acme__shop_api.customer_revenue')")).rows[0];
      expect(d.freshness).toMatchObject({ pipeline: "shop_api", run_id: runId, kind: "model", row_count: 120 });
      const listed = (await c.query("select * from sextant.list_tables('t_acme__shop_api')")).rows;
      expect(listed.find((t) => t.table_name === "orders")).toMatchObject({ loaded_by_run: runId, rows_changed: 400 });
      // The models' docs are indexed like a dbt project: search, details with lineage, describe_table.
      const hits = (await c.query("select * from sextant.search_dbt_models('revenue per customer', 5)")).rows;
      expect(hits[0]).toMatchObject({ name: "customer_revenue" });
      const details = (await c.query("select * from sextant.get_model_details('customer_revenue')")).rows[0];
      expect(JSON.stringify(details)).toContain("source.pipeline_shop_api.shop.orders");
      expect(JSON.stringify(details)).toMatch(/top_customers/);
      const described = (await c.query("select dbt from sextant.describe_table('t_acme__shop_api.customer_revenue')")).rows[0];
      expect(JSON.stringify(described.dbt)).toMatch(/Revenue and number of paid orders/);
      expect(JSON.stringify(described.dbt)).toMatch(/not_null/);
      await asRole(c, "sextant_t_globex");
      await refused(c, "select * from t_acme__shop_api.customers", "42501");
      expect((await c.query("select count(*)::int as n from sextant.search_dbt_models('revenue per customer', 5)")).rows[0].n).toBe(0);
    });
    // Same data again: nothing changed.
    const again = await requestRun("acme", "shop_api");
    await waitFor(again, ["succeeded"]);
    const fresh = (await db.admin.query("select rows_changed, run_id from sextant.materialized_tables where table_name = 'orders'")).rows[0];
    expect(fresh).toMatchObject({ rows_changed: 0, run_id: again });
    expect(await db.admin.query("select count(*)::int as n from pg_namespace where nspname like 'sextant_stage_%'").then((r) => r.rows[0].n)).toBe(0);
  });

  test("two runs of one pipeline requested at once: the second is refused while the first is active", async () => {
    await definePipeline("acme");
    const first = await requestRun("acme", "shop_api");
    await expect(requestRun("acme", "shop_api")).rejects.toMatchObject({ code: "SX409", message: expect.stringContaining(`run ${first}`) });
    await asAdmin("acme", (c) => c.query("select sextant.cancel_materialization($1)", [first]));
  });

  test("a queued run that is cancelled never starts", async () => {
    await definePipeline("acme");
    const runId = await requestRun("acme", "shop_api");
    const row = await asAdmin("acme", async (c) => (await c.query("select * from sextant.cancel_materialization($1)", [runId])).rows[0]);
    expect(row.status).toBe("cancelled");
    await startTestWorker();
    await new Promise((r) => setTimeout(r, 1500));
    const s = await status(runId);
    expect(s).toMatchObject({ status: "cancelled", started_at: null });
  });

  test("a running run that is cancelled stops at the next batch and leaves the old tables in place", async () => {
    const slow = await startShopApi({ delayMs: 150, customers: 2000, token: "shop-secret-token" });
    try {
      await definePipeline("acme", {}, slow.url);
      await startTestWorker();
      const before = await count("t_acme__shop_api.customers");
      const runId = await requestRun("acme", "shop_api");
      await waitFor(runId, ["running"]);
      await new Promise((r) => setTimeout(r, 600));
      await asAdmin("acme", (c) => c.query("select sextant.cancel_materialization($1)", [runId]));
      const s = await waitFor(runId, ["cancelled", "succeeded", "failed"]);
      expect(s.status).toBe("cancelled");
      expect(s.progress.customers.rows).toBeLessThan(2000);
      expect(await count("t_acme__shop_api.customers")).toBe(before);
    } finally {
      await slow.close();
    }
  });

  test.each([
    ["a source that returns garbage", { garbage: true }, {}, /did not return JSON/],
    ["a records path that is not there", {}, { entities: [{ name: "customers", path: "/customers", records_path: "items" }], models: [] }, /no array at "items"/],
    ["a page over the size limit", {}, { source: { name: "shop", kind: "http", base_url: "${URL}", max_page_bytes: 1000, headers: { authorization: { secret: "shop_auth_header" } } } }, /over the limit/],
    ["a model with a syntax error", {}, { models: [{ name: "broken", sql: "select from from {{ source('shop', 'customers') }}" }] }, /model broken/],
    ["a model that reads another tenant's table", {}, { models: [{ name: "snoop", sql: "select * from globex_ops.shipments" }] }, /permission denied|globex_ops/],
    ["a model with a data-modifying CTE", {}, { models: [{ name: "evil", sql: "with d as (delete from t_acme__shop_api.customers returning *) select * from d" }] }, /modifies data|writes or locks/],
    ["a model that switches role", {}, { models: [{ name: "esc", sql: "select set_config('role', 'sextant_t_globex', true)" }] }, /set_config|not allowed/],
    ["a wrong credential", { token: "another-token" }, {}, /401/],
  ])("%s: the run fails with a reason and the old tables stay complete", async (_what, apiOpts, overrides, reason) => {
    const bad = await startShopApi({ token: "shop-secret-token", ...apiOpts });
    try {
      const o = JSON.parse(JSON.stringify(overrides).replace("${URL}", bad.url));
      await definePipeline("acme", o, bad.url);
      await startTestWorker();
      const before = await count("t_acme__shop_api.customers");
      const runId = await requestRun("acme", "shop_api");
      const s = await waitFor(runId, ["failed", "succeeded"]);
      expect(s.status).toBe("failed");
      expect(s.error).toMatch(reason);
      expect(await count("t_acme__shop_api.customers")).toBe(before);
      expect(await count("globex_ops.shipments")).toBe(20);
      expect(await db.admin.query("select count(*)::int as n from pg_namespace where nspname = $1", [`sextant_stage_${runId}`]).then((r) => r.rows[0].n)).toBe(0);
    } finally {
      await bad.close();
    }
  });

  test("a source on a private address is refused unless the operator allows the host", async () => {
    await definePipeline("acme");
    await workers.start({ concurrency: 1, allowHosts: [] }); // as the operator left it: no private hosts
    const runId = await requestRun("acme", "shop_api");
    const s = await waitFor(runId, ["failed", "succeeded"]);
    expect(s).toMatchObject({ status: "failed" });
    expect(s.error).toMatch(/private or loopback address/);
  });

  test("a transient failure on every try is retried by the queue, then the run fails with the reason", async () => {
    const down = await startShopApi({ rateLimitEvery: 1, token: "shop-secret-token" });
    try {
      await definePipeline("acme", { source: { name: "shop", kind: "http", base_url: down.url, max_retries: 1, headers: { authorization: { secret: "shop_auth_header" } } } }, down.url);
      await startTestWorker();
      const runId = await requestRun("acme", "shop_api");
      const first = await waitUntil(runId, (r) => r.attempts >= 1 && r.status === "queued" && r.error !== null);
      expect(first.error).toMatch(/attempt 1 failed: .*429/);
      expect(first.current_step).toBe("waiting to retry");
      // Skip the queue's backoff and make the next attempt the last one.
      await db.admin.query("update graphile_worker._private_jobs set run_at = now(), max_attempts = 2 where key = $1", [`sextant_run_${runId}`]);
      const last = await waitFor(runId, ["failed", "succeeded"]);
      expect(last).toMatchObject({ status: "failed", attempts: 2 });
      expect(last.error).toMatch(/429/);
    } finally {
      await down.close();
    }
  });
});

describe("attempts at one run", () => {
  test("an attempt the run was taken from cannot finish, end or report it — even from the same worker process", async () => {
    await definePipeline("acme");
    const runId = await requestRun("acme", "shop_api");
    const asWorker = async <T,>(fn: (c: import("pg").PoolClient) => Promise<T>) => {
      const c = await db.admin.connect();
      try {
        await c.query("begin; set local role sextant_worker");
        const out = await fn(c);
        await c.query("commit");
        return out;
      } catch (error) {
        await c.query("rollback");
        throw error;
      } finally {
        c.release();
      }
    };
    const claim = (worker: string) => asWorker(async (c) => (await c.query("select sextant_private.claim_run($1, $2, 1) as c", [runId, worker])).rows[0].c);
    expect((await claim("w1")).attempt).toBe(1);
    // Attempt 1 stalls: no heartbeat for an hour; the reaper hands the run back to the queue,
    // and the same worker process (same graphile-worker id) picks the job up again.
    await db.admin.query("update sextant.materialization_runs set heartbeat_at = now() - interval '1 hour' where id = $1", [runId]);
    await asWorker((c) => c.query("select sextant_private.reap_stale_runs(interval '1 minute')"));
    expect((await claim("w1")).attempt).toBe(2);
    // Attempt 1 wakes up: everything it tries is refused, attempt 2 is untouched.
    await expect(asWorker((c) => c.query("select sextant_private.finish_run($1, 'w1', 1, '[]')", [runId]))).rejects.toMatchObject({ code: "SX409" });
    expect((await asWorker((c) => c.query("select sextant_private.end_run($1, 'failed', 'late', 'w1', 1) as done", [runId]))).rows[0].done).toBe(false);
    expect((await asWorker((c) => c.query("select sextant_private.report_progress($1, 1, 'late step', null, null) as stop", [runId]))).rows[0].stop).toBe(true);
    expect((await asWorker((c) => c.query("select sextant_private.report_progress($1, 2, 'loading', null, null) as stop", [runId]))).rows[0].stop).toBe(false);
    expect(await status(runId)).toMatchObject({ status: "running", attempts: 2, current_step: "loading" });
    expect((await asWorker((c) => c.query("select sextant_private.end_run($1, 'failed', 'test over', 'w1', 2) as done", [runId]))).rows[0].done).toBe(true);
    expect(await status(runId)).toMatchObject({ status: "failed", error: "test over" });
  });
});

describe("a job left locked after its run ended", () => {
  test("a worker killed after the run ended, before graphile-worker recorded the job, does not hold the pipeline's queue", async () => {
    await definePipeline("acme");
    const ended = await requestRun("acme", "shop_api");
    // What such a worker leaves: the run succeeded, its job and the pipeline's queue still locked by it.
    await db.admin.query("update sextant.materialization_runs set status = 'succeeded', finished_at = now(), worker_id = 'dead-pool', attempts = 1 where id = $1", [ended]);
    await db.admin.query("update graphile_worker._private_jobs set locked_by = 'dead-pool', locked_at = now() - interval '1 hour', attempts = 1 where key = $1", [`sextant_run_${ended}`]);
    await db.admin.query(`update graphile_worker._private_job_queues as q set locked_by = 'dead-pool', locked_at = now() - interval '1 hour'
                          from graphile_worker._private_jobs as j where j.job_queue_id = q.id and j.key = $1`, [`sextant_run_${ended}`]);
    const next = await requestRun("acme", "shop_api");
    await startTestWorker(2000);
    const done = await waitFor(next, ["succeeded", "failed"]);
    expect(done).toMatchObject({ status: "succeeded", error: null });
    expect((await db.admin.query("select count(*)::int as n from graphile_worker._private_jobs where locked_by = 'dead-pool'")).rows[0].n).toBe(0);
  });
});

describe("a worker killed in the middle of a load", () => {
  test("the old tables stay readable and complete, the job is retried by another worker, and the run succeeds", { timeout: 150_000 }, async () => {
    // A first, complete load.
    await definePipeline("acme");
    await startTestWorker();
    await waitFor(await requestRun("acme", "shop_api"), ["succeeded"]);
    await workers.stop();
    const before = await count("t_acme__shop_api.customers");
    expect(before).toBe(120);

    const apiOpts = { delayMs: 60, customers: 1500, token: "shop-secret-token" };
    const slow = await startShopApi(apiOpts);
    const child = spawn(process.execPath, [SEXTANT_BIN, "worker"], {
      env: { ...process.env, DATABASE_URL: db.adminUrl, SEXTANT_SOURCE_ALLOW_HOSTS: "127.0.0.1:*", LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const spawnedAt = Date.now();
    // The worker is up once it says so (a cold start under a loaded CI machine can take seconds;
    // the run's own clock starts after that).
    const up = new Promise<number>((resolve) => {
      const onData = (d: Buffer) => {
        stderr += d;
        if (stderr.includes("sextant worker running")) resolve(Date.now() - spawnedAt);
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
    });
    try {
      const startMs = await Promise.race([up, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`sextant worker did not start in 60 s: ${stderr}`)), 60_000))]);
      await definePipeline("acme", {}, slow.url);
      const runId = await requestRun("acme", "shop_api");
      const mid = await waitUntil(runId, (r) => r.status === "running" && (r.progress.customers?.rows ?? 0) >= 100, 45000).catch(async (e) => {
        const jobs = await db.admin.query(
          "select j.id, j.key, j.attempts, j.max_attempts, j.run_at, j.locked_by, j.locked_at, q.queue_name, q.locked_by as queue_locked_by from graphile_worker._private_jobs j left join graphile_worker._private_job_queues q on q.id = j.job_queue_id");
        throw new Error(`${e.message}\nworker started in ${startMs} ms\njobs: ${JSON.stringify(jobs.rows)}\nworker output: ${stderr}`);
      });
      expect(mid.worker_id).toBeTruthy();
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      // Readers still see the complete old table while the run is stuck with a dead worker.
      expect(await count("t_acme__shop_api.customers")).toBe(before);
      expect((await status(runId)).status).toBe("running");
      apiOpts.delayMs = 0; // the retry may go fast
      // Another worker notices the missing heartbeats and takes the job over.
      await startTestWorker(2000);
      const done = await waitFor(runId, ["succeeded", "failed"], 60000);
      expect(done.error).toBeNull();
      expect(done).toMatchObject({ status: "succeeded", attempts: 2 });
      expect(await count("t_acme__shop_api.customers")).toBe(1500);
    } finally {
      child.kill("SIGKILL");
      await slow.close();
    }
  });
});

describe("a worker that shuts down gracefully in the middle of a load", () => {
  test("puts the run back in the queue (not failed); the next worker finishes it", { timeout: 60_000 }, async () => {
    const apiOpts = { delayMs: 60, customers: 4000, pageSize: 25, token: "shop-secret-token" };
    const slow = await startShopApi(apiOpts);
    try {
      await provision("acme", "graceful");
      await definePipeline("acme", { name: "graceful", target_schema: "t_acme__graceful" }, slow.url);
      const first = await startTestWorker();
      const runId = await requestRun("acme", "graceful");
      await waitUntil(runId, (r) => r.status === "running" && (r.progress.customers?.rows ?? 0) >= 50);
      await first.stop(); // graceful: waits, then aborts the job after graphile-worker's timeout
      workers.forget();
      const stopped = await status(runId);
      expect(stopped).toMatchObject({ status: "queued", current_step: "waiting to retry" });
      expect(stopped.error).toMatch(/worker shut down/);
      apiOpts.delayMs = 0; // the retry may go fast
      await db.admin.query("update graphile_worker._private_jobs set run_at = now() where key = $1", [`sextant_run_${runId}`]);
      await startTestWorker();
      const done = await waitFor(runId, ["succeeded", "failed"], 40_000).catch(async (e) => {
        const job = await db.admin.query("select j.*, q.locked_by as qlocked from graphile_worker._private_jobs j left join graphile_worker._private_job_queues q on q.id = j.job_queue_id where key = $1", [`sextant_run_${runId}`]);
        throw new Error(`${e.message}: ${JSON.stringify(job.rows)}`);
      });
      expect(done).toMatchObject({ status: "succeeded", error: null });
      expect(await count("t_acme__graceful.customers")).toBe(4000);
    } finally {
      await slow.close();
    }
  });
});

