import type { Command } from "commander";
import { workerUrl } from "../../db/migrate.ts";
import { startWorker } from "../../worker/index.ts";
import { withContext } from "../context.ts";

/** `sextant worker`: the pipeline worker alone, until a signal. */
export default function register(program: Command): void {
  program
    .command("worker")
    .description("run the pipeline worker alone (sextant serve runs one too unless SEXTANT_WORKER=0)")
    .action(() =>
      withContext(async ({ admin, config, db, log }) => {
        // Its own login (sextant_worker), never the admin's: see src/worker/index.ts. The admin
        // connection the CLI opened (to migrate) is not kept for the worker's lifetime.
        const databaseUrl = await workerUrl(db.adminUrl);
        await admin.end();
        const worker = await startWorker({ databaseUrl, log, concurrency: config.workerConcurrency, staleMs: config.workerStaleMs,
          allowHosts: config.sourceAllowHosts, fileDir: config.sourceFileDir });
        process.stderr.write("sextant worker running; Ctrl-C stops it after the current batch\n");
        for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);
        await new Promise<void>((resolve) => {
          for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => resolve());
        });
        await worker.stop();
      }),
    );
}
