import type { JobHelpers } from "graphile-worker";
import pg from "pg";
import type { Logger } from "pino";
import { inTransaction } from "../db/transaction.ts";
import { guardSql } from "../query/guard.ts";
import { describeRunError, isTransient, RunError, RunStopped } from "./errors.ts";
import { sourceKind } from "./sources/index.ts";

/** What sextant_private.claim_run returns. */
interface Claim {
  run_id: number;
  /** The run's attempt this claim is (finish, end and progress name it: a later attempt owns the run). */
  attempt: number;
  tenant: string;
  pipeline: string;
  pipeline_id: number;
  builder_role: string;
  /** The builder's login password: loads and the swap run logged in as the builder. */
  builder_password: string;
  reader_role: string;
  stage_schema: string;
  target_schema: string;
  source: Record<string, unknown> & { kind: string; name: string };
  secrets: Record<string, string>;
  entities: ({ name: string } & Record<string, unknown>)[];
  models: { name: string; materialized: "table" | "view"; raw_sql: string }[];
  timeout_ms: number;
}

export interface MaterializeDeps {
  /** Logged in as sextant_worker. */
  pool: pg.Pool;
  /** The worker's connection string; the builder logs in to the same server and database. */
  databaseUrl: string;
  log: Logger;
  allowHosts: string[];
  fileDir: string;
  staleMs: number;
}

const quote = pg.escapeIdentifier;

/** {"secret": "name"} anywhere in a source definition becomes the decrypted value. */
export function resolveSecrets(value: unknown, secrets: Record<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveSecrets(v, secrets));
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.secret === "string") {
      const secret = secrets[o.secret];
      if (secret === undefined) throw new RunError(`the source refers to secret "${o.secret}", which is not stored`, false, "Store it with `sextant pipeline secret` or set_pipeline_secret.");
      return secret;
    }
    return Object.fromEntries(keys.map((k) => [k, resolveSecrets(o[k], secrets)]));
  }
  return value;
}

/** Progress and heartbeats of one attempt at a run; `stop` turns true when it is cancelled or taken over. */
class RunReporter {
  stop = false;
  private last = 0;
  private timer: NodeJS.Timeout;
  constructor(
    private readonly pool: pg.Pool,
    private readonly runId: number,
    private readonly attempt: number,
    heartbeatMs: number,
  ) {
    this.timer = setInterval(() => void this.send(null, null, null).catch(() => {}), heartbeatMs);
  }
  async send(step: string | null, entity: string | null, progress: Record<string, unknown> | null): Promise<boolean> {
    const { rows } = await this.pool.query("select sextant_private.report_progress($1, $2, $3, $4, $5) as stop", [
      this.runId, this.attempt, step, entity, progress ? JSON.stringify(progress) : null,
    ]);
    this.stop ||= rows[0].stop;
    return this.stop;
  }
  /** Throttled progress of a batch; throws RunStopped when the run was cancelled. */
  async batch(entity: string, progress: Record<string, unknown>, force = false): Promise<void> {
    if (force || Date.now() - this.last > 300) {
      this.last = Date.now();
      await this.send(null, entity, progress);
    }
    if (this.stop) throw new RunStopped("cancelled");
  }
  close(): void {
    clearInterval(this.timer);
  }
}

/** The graphile-worker task `sextant_materialize` (payload: {run_id}). */
export function materializeTask(deps: MaterializeDeps) {
  return async (payload: unknown, helpers: JobHelpers): Promise<void> => {
    const runId = Number((payload as { run_id?: unknown })?.run_id);
    if (!Number.isSafeInteger(runId)) throw new Error("sextant_materialize needs {run_id}");
    const workerId = helpers.job.locked_by ?? `worker-${process.pid}`;
    const { rows } = await deps.pool.query("select sextant_private.claim_run($1, $2, $3) as claim", [runId, workerId, helpers.job.attempts]);
    const claim = rows[0].claim as Claim | null;
    if (!claim) return;
    const log = deps.log.child({ run: runId, pipeline: claim.pipeline, tenant: claim.tenant });
    // Heartbeats well inside the stale limit, so a live worker is never taken for a dead one.
    const reporter = new RunReporter(deps.pool, runId, claim.attempt, Math.max(200, Math.min(2000, deps.staleMs / 4)));
    try {
      await runPipeline(claim, workerId, deps, reporter, helpers.abortSignal, log);
      log.info("run succeeded");
    } catch (error) {
      const end = async (status: string, why: string | null) =>
        (await deps.pool.query("select sextant_private.end_run($1, $2, $3, $4, $5) as done", [runId, status, why, workerId, claim.attempt])).rows[0].done as boolean;
      if (error instanceof RunStopped || reporter.stop) {
        // Cancelled, or another attempt took the run over after missed heartbeats (then nothing changes).
        if (await end("cancelled", null)) log.info("run cancelled");
        else log.warn("run was taken over by another worker; this attempt stops");
        return;
      }
      if (helpers.abortSignal.aborted) {
        // The worker is shutting down: back to the queue, not failed.
        await end("queued", `attempt ${helpers.job.attempts} stopped: the worker shut down`);
        // graphile-worker may not record this attempt while it stops: free the job for others now.
        await deps.pool.query("select graphile_worker.force_unlock_workers($1::text[])", [[workerId]]);
        log.info("worker stopping; run goes back to the queue");
        throw error;
      }
      const message = describeRunError(error);
      const last = helpers.job.attempts >= helpers.job.max_attempts;
      if (isTransient(error) && !last) {
        await end("queued", `attempt ${helpers.job.attempts} failed: ${message}`);
        log.warn({ err: message }, "run attempt failed; graphile-worker will retry");
        throw error;
      }
      await end("failed", message);
      log.warn({ err: message }, "run failed");
    } finally {
      reporter.close();
    }
  };
}

/**
 * A session logged in as the tenant's builder: the only session that reads a source's answers
 * or touches the tenant's tables. Whatever a source manages to inject there acts with this
 * tenant's rights alone (not the worker's, which reach every tenant's runs and secrets).
 */
export async function connectBuilder(databaseUrl: string, role: string, password: string): Promise<pg.Client> {
  const url = new URL(databaseUrl);
  url.username = role;
  url.password = password;
  const client = new pg.Client({ connectionString: url.toString(), options: "-c lock_timeout=30s" });
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function runPipeline(claim: Claim, workerId: string, deps: MaterializeDeps, reporter: RunReporter, signal: AbortSignal, log: Logger): Promise<void> {
  const builder = await connectBuilder(deps.databaseUrl, claim.builder_role, claim.builder_password);
  try {
    await runPipelineAs(builder, claim, workerId, deps, reporter, signal, log);
  } finally {
    await builder.end().catch(() => {});
  }
}

async function runPipelineAs(
  builder: pg.Client, claim: Claim, workerId: string, deps: MaterializeDeps, reporter: RunReporter, signal: AbortSignal, log: Logger,
): Promise<void> {
  const source = resolveSecrets(claim.source, claim.secrets) as Claim["source"];
  const loadEntity = sourceKind(source.kind).open(source, { allowHosts: deps.allowHosts, fileDir: deps.fileDir, signal, log });
  const loaded: { table: string; kind: "entity" | "model"; rows: number | null; relkind: "table" | "view" }[] = [];

  // 1. Entities, each in its own transaction into the staging schema (invisible to readers).
  for (const entity of claim.entities) {
    await reporter.send(`loading ${entity.name}`, entity.name, { rows: 0, done: false });
    if (reporter.stop) throw new RunStopped("cancelled");
    const rows = await inTransaction(builder, (client) =>
      loadEntity({ client, schema: claim.stage_schema, entity, progress: (counts) => reporter.batch(entity.name, { ...counts, done: false }) }));
    await reporter.batch(entity.name, { rows, done: true }, true);
    loaded.push({ table: entity.name, kind: "entity", rows, relkind: "table" });
  }

  // 2. Models in dependency order, through the tenant's builder (read-only SELECTs).
  const loadedNames = claim.entities.map((e) => e.name);
  for (const model of claim.models) {
    await reporter.send(`building ${model.name}`, null, null);
    if (reporter.stop) throw new RunStopped("cancelled");
    const { rows } = await deps.pool.query("select sextant_exec.render_model($1, $2, $3, $4, $5) as sql", [
      model.raw_sql, claim.stage_schema, claim.target_schema, source.name, loadedNames,
    ]);
    const sql = rows[0].sql as string;
    try {
      guardSql(sql);
    } catch (error) {
      throw new RunError(`model ${model.name}: ${(error as Error).message}`);
    }
    try {
      const built = await deps.pool.query(`select sextant_exec.${quote("build_model__" + claim.tenant)}($1, $2, $3, $4, $5) as rows`, [
        claim.stage_schema, model.name, model.materialized, sql, claim.timeout_ms,
      ]);
      loaded.push({ table: model.name, kind: "model", rows: built.rows[0].rows, relkind: model.materialized });
    } catch (error) {
      if (isTransient(error)) throw error;
      throw new RunError(`model ${model.name} failed: ${(error as Error).message}`);
    }
  }

  // 3. The swap: one SQL function, one transaction, as the builder (sql/materialize_swap.sql, swap_run).
  await reporter.send("swapping into place", null, null);
  if (reporter.stop) throw new RunStopped("cancelled");
  await builder.query("select sextant_exec.swap_run($1, $2, $3, $4)", [claim.run_id, workerId, claim.attempt, JSON.stringify(loaded)]);
}
