import pg from "pg";

/**
 * Cancels what `client`'s backend is running: pg_cancel_backend from a connection of its own,
 * made with the pool's settings (the same login, which may signal its own backends; a pooled
 * one could be the last free connection, or none). Best effort: resolves either way, within
 * a few seconds.
 */
export async function cancelBackend(pool: pg.Pool, client: pg.PoolClient): Promise<void> {
  const pid = (client as unknown as { processID?: number }).processID;
  if (!pid) return;
  const canceller = new pg.Client({ ...pool.options, connectionTimeoutMillis: 5000, query_timeout: 5000 } as pg.ClientConfig);
  canceller.on("error", () => {});
  try {
    await canceller.connect();
    await canceller.query("select pg_catalog.pg_cancel_backend($1)", [pid]);
  } catch {
    // The statement then runs to its statement timeout, on a connection that is closed anyway.
  } finally {
    await canceller.end().catch(() => {});
  }
}
