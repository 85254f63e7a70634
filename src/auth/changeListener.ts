import type pg from "pg";

/**
 * Listens on channel `sextant_auth` (sent by triggers when tokens, principals or tenants
 * change) and calls `onChange`. While the listening connection is down, `healthy()` is false
 * so that callers stop trusting their caches; it reconnects every second.
 */
export function listenForAuthChanges(pool: pg.Pool, onChange: () => void) {
  let client: pg.PoolClient | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async () => {
    if (closed) return;
    try {
      const c = await pool.connect();
      c.on("notification", () => onChange());
      c.on("error", () => {
        if (client !== c) return; // already closed and handed back
        client = undefined;
        c.release(true);
        onChange();
        if (!closed) retry = setTimeout(() => void connect(), 1000);
      });
      await c.query("listen sextant_auth");
      // Closed while this connection was being opened (a stop right after the start): close()
      // did not see it, so hand it back here, or the pool would wait for it forever.
      if (closed) {
        await c.query("unlisten *").catch(() => {});
        c.removeAllListeners("notification");
        c.release();
        return;
      }
      client = c;
      onChange(); // anything may have changed while we were not listening
    } catch {
      retry = setTimeout(() => void connect(), 1000);
    }
  };
  void connect();

  return {
    healthy: () => client !== undefined,
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      if (c) {
        await c.query("unlisten *").catch(() => {});
        c.removeAllListeners("notification");
        c.release();
      }
    },
  };
}
