import pg from "pg";
import "./pgTypes.ts";

/** A pg Pool whose idle-connection errors are logged instead of crashing the process. */
export function createPool(connectionString: string, max = 10, onError?: (e: Error) => void): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000 });
  // Only message and code: a pg error carries its client, which has no place in a log.
  pool.on("error", (e) => onError?.(Object.assign(new Error(e.message), { code: (e as { code?: string }).code })));
  return pool;
}
