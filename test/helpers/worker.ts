import pino from "pino";
import { workerUrl } from "../../src/db/migrate.ts";
import { startWorker, type WorkerHandle, type WorkerOptions } from "../../src/worker/index.ts";
import type { TestDatabase } from "./db.ts";

/**
 * Starts the pipeline worker on a test database exactly as `sextant serve` / `sextant worker`
 * do: logged in as sextant_worker (its own generated password), never as the admin.
 */
export async function startTestWorker(db: TestDatabase, opts: Partial<Omit<WorkerOptions, "databaseUrl">> = {}): Promise<WorkerHandle> {
  return startWorker({
    databaseUrl: await workerUrl(db.adminUrl),
    log: pino({ level: "silent" }),
    concurrency: 1,
    staleMs: 30000,
    allowHosts: [],
    fileDir: "/nonexistent",
    ...opts,
  });
}
