import { hostname } from "node:os";
import { Logger as WorkerLogger, run, type Runner } from "graphile-worker";
import pg from "pg";
import type { Logger } from "pino";
import { materializeTask } from "./materialize.ts";

export interface WorkerHandle {
  runner: Runner;
  /** Reaps stale runs now (also done on a timer). */
  reap(): Promise<void>;
  stop(): Promise<void>;
}

export interface WorkerOptions {
  /** The worker's own login (sextant_worker; `workerUrl` in src/db/migrate.ts), never the admin's. */
  databaseUrl: string;
  log: Logger;
  concurrency: number;
  staleMs: number;
  allowHosts: string[];
  fileDir: string;
}

/**
 * Runs graphile-worker in this process as sextant_worker: the materialize task, a tick every
 * minute (scheduled pipelines, expired schemas, orphan staging schemas), and a reaper that
 * hands the runs of workers that stopped sending heartbeats back to the queue.
 */
export async function startWorker(opts: WorkerOptions): Promise<WorkerHandle> {
  const { log } = opts;
  // Logged in as sextant_worker: not superuser, a member of no tenant role. What a run loads
  // and swaps goes through a second login, the tenant's builder (materialize.ts).
  // A load never waits more than 30 s for a lock (it fails and is retried instead of hanging).
  const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.concurrency + 4, options: "-c lock_timeout=30s" });
  // Only the message and code: pg attaches the whole client (and its parsed statements) to
  // these errors, which would fill the log when the database restarts.
  const warn = (e: Error & { code?: string }) => log.warn({ error: e.message, code: e.code }, "worker connection error");
  pool.on("error", warn);
  pool.on("connect", (client) => client.on("error", warn));
  const wlog = log.child({ component: "worker" });
  const logger = new WorkerLogger((scope) => (level, message, meta) => {
    // The scheduler tick runs every minute: its "Completed task" line is debug, not info noise.
    const routine = (meta as { job?: { task_identifier?: string } } | undefined)?.job?.task_identifier === "sextant_tick";
    const fn = level === "error" ? wlog.error : level === "warning" ? wlog.warn : level === "info" && !routine ? wlog.info : wlog.debug;
    fn.call(wlog, { ...scope, ...meta }, message);
  });
  const reap = async () => {
    const { rows } = await pool.query("select sextant_private.reap_stale_runs(make_interval(secs => $1::double precision / 1000)) as workers", [opts.staleMs]);
    const workers = rows[0].workers as string[];
    if (workers.length > 0) {
      await pool.query("select graphile_worker.force_unlock_workers($1::text[])", [workers]);
      log.warn({ workers }, "unlocked the jobs of workers that stopped responding; their runs will be retried");
    }
  };
  const runner = await run({
    pgPool: pool,
    concurrency: opts.concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    // graphile-worker sends a job's completion without waiting for it (delay -1), so a stop
    // right after a job ended could close the pool first: the job then stayed locked, and with it
    // the pipeline's whole queue, for graphile-worker's 4 hours. Batched (delay 0), a stop flushes
    // the pending completions and failures before it returns.
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    logger,
    taskList: {
      sextant_materialize: materializeTask({ pool, databaseUrl: opts.databaseUrl, log, allowHosts: opts.allowHosts, fileDir: opts.fileDir, staleMs: opts.staleMs }) as never,
      sextant_tick: async (_payload, helpers) => {
        const { rows } = await pool.query("select sextant_private.scheduler_tick(now()) as result");
        if (rows[0].result.queued || rows[0].result.schemas_dropped) log.info(rows[0].result, "scheduler tick");
        // Sources due for a refresh (sql/sources.sql): one job each, one at a time per source.
        for (const s of (await pool.query("select tenant_slug, name from sextant_private.due_sources()")).rows) {
          await helpers.addJob("sextant_source_refresh", { tenant: s.tenant_slug, name: s.name }, { jobKey: `source:${s.tenant_slug}/${s.name}`, maxAttempts: 1 });
        }
        await reap();
      },
      sextant_source_refresh: async (payload) => {
        const { tenant, name } = payload as { tenant: string; name: string };
        const { rows } = await pool.query("select sextant_private.refresh_due_source($1, $2) as status", [tenant, name]);
        if (rows[0].status === "failed") log.warn({ tenant, source: name }, "source refresh failed (recorded on the source)");
      },
    },
    crontab: "* * * * * sextant_tick ?max=1&jobKey=sextant_tick&jobKeyMode=replace",
  });
  await reap().catch((e) => log.warn({ err: e }, "reaper failed"));
  const timer = setInterval(() => void reap().catch((e) => log.warn({ err: e }, "reaper failed")), Math.max(500, Math.min(opts.staleMs / 2, 15000)));
  log.info({ host: hostname(), concurrency: opts.concurrency }, "pipeline worker started");
  return {
    runner,
    reap,
    /**
     * Graceful: running jobs are asked to stop (after graphile-worker's 5 s) and go back to the
     * queue. Bounded: after 20 s the runner is killed and the pool dropped, so a stuck job
     * cannot keep the process alive (its run is reaped by the next worker).
     */
    async stop() {
      clearInterval(timer);
      const within = (p: Promise<unknown>, ms: number) =>
        Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
      if (!(await within(runner.stop(), 20_000))) {
        log.warn("worker did not stop in 20 s; killing it");
        await within(runner.kill(), 5_000);
      }
      await within(pool.end(), 5_000);
    },
  };
}
