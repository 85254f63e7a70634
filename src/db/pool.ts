import pg from "pg";
import "./pgTypes.ts";

/** A pg Pool whose idle-connection errors are logged instead of crashing the process. */
export function createPool(connectionString: string, max = 10, onError?: (e: Error) => void): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000 });
  pool.on("error", (e) => onError?.(e));
  return pool;
}
