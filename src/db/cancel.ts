import type { EventEmitter } from "node:events";
import pg from "pg";

/** What pg keeps on a client and its connection (not in its types): the backend's key, the socket. */
interface Keyed { processID?: number | null; secretKey?: number | null }
interface Canceller {
  host?: string;
  port?: number;
  connection: EventEmitter & { stream: { destroy(): void }; connect(...at: unknown[]): void; cancel(pid: number, key: number): void };
}

/**
 * Cancels what `client`'s backend is running with PostgreSQL's cancel request: the backend's
 * pid and secret key, sent on a socket of its own to the pool's server (pg's Client.cancel, as
 * psql's Ctrl-C). It is no session: it takes no connection slot and no login (a pool at
 * max_connections or at its role's connection limit can still cancel), and the key makes it
 * exact: a request that reaches another server (a load balancer, a pooler in front of several)
 * cancels nothing there, where pg_cancel_backend(pid) from a new session could cancel whatever
 * ran under that pid. Like libpq's PQcancel the request is not encrypted (it carries no
 * credentials). Best effort: resolves when the server has taken it, or within 5 seconds.
 */
export async function cancelBackend(pool: pg.Pool, client: pg.PoolClient): Promise<void> {
  const keyed = client as unknown as Keyed;
  if (!keyed.processID || keyed.secretKey == null) return;
  const canceller = new pg.Client({ ...pool.options } as pg.ClientConfig) as unknown as Canceller;
  const con = canceller.connection;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      con.stream.destroy();
      resolve();
    };
    const timer = setTimeout(done, 5000);
    // The server reads the request and closes the socket; an unreachable one errors.
    con.on("end", done);
    con.on("error", done);
    // What pg's Client.cancel does, without its check that a query is the client's active one:
    // that reads Client.activeQuery, which pg deprecates (a warning on stderr; pg 9 drops it).
    // A backend that runs nothing ignores the request.
    const { host, port } = canceller;
    if (host?.startsWith("/")) con.connect(`${host}/.s.PGSQL.${port}`);
    else con.connect(port, host);
    con.once("connect", () => con.cancel(keyed.processID!, keyed.secretKey!));
  });
}

/**
 * Cancels `client`'s statement (cancelBackend) if `signal` aborts before the returned `stop` is
 * called. `stop` ends the watch and returns the cancel sent, if any, to await: a client a cancel
 * was sent for must then be closed, not pooled, since the cancel may reach its backend after the
 * statement ended and must not cancel the next caller's. Without a signal it watches nothing.
 */
export function cancelOnAbort(pool: pg.Pool, client: pg.PoolClient, signal: AbortSignal | undefined): () => Promise<void> | undefined {
  if (!signal) return () => undefined;
  let cancelling: Promise<void> | undefined;
  const onAbort = () => (cancelling ??= cancelBackend(pool, client));
  signal.addEventListener("abort", onAbort, { once: true });
  return () => {
    signal.removeEventListener("abort", onAbort);
    return cancelling;
  };
}
