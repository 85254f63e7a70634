import { AsyncLocalStorage } from "node:async_hooks";
import type pg from "pg";
import { cancelOnAbort } from "../db/cancel.ts";
import { callerGoneError } from "../db/errors.ts";
import { clientGone, type WatchedResponse } from "../http/clientGone.ts";

/**
 * A GraphQL request's client leaving cancels the SQL it is running, as MCP's callers do
 * (src/db/queryAsRole.ts): without it a query runs on to the tenant's statement timeout (15 s
 * by default) on the user's database, holding a pooled connection. PostGraphile takes its
 * connections itself, so the request's signal reaches them through the async context: set
 * around each withPgClient call of the request (`cancelledWithCaller`, in the GraphQL context),
 * read by the pool view of `withCallerCancel`.
 */
const callerSignal = new AsyncLocalStorage<AbortSignal>();

/**
 * What the GraphQL context of a request answering `res` gets: `callerSignal`, aborted when the
 * client closes the connection before the answer ended, and PostGraphile's `withPgClient` run
 * under it, so the connections it takes are cancelled then (withCallerCancel). Nothing when
 * there is no response to watch.
 */
export function cancelledWithCaller<W extends (...args: never[]) => unknown>(
  res: WatchedResponse | undefined,
  context: { withPgClient?: W } | undefined,
): { callerSignal?: AbortSignal; withPgClient?: W } {
  const withPgClient = context?.withPgClient;
  if (!res || !withPgClient) return {};
  const signal = clientGone(res);
  return {
    callerSignal: signal,
    withPgClient: Object.assign((...args: Parameters<W>) => callerSignal.run(signal, () => withPgClient(...args)), withPgClient) as unknown as W,
  };
}

/**
 * A view of `pool` whose clients, taken while a request's signal is set, stop when it aborts:
 * the statement running is cancelled (PostgreSQL's cancel request: src/db/cancel.ts) and no
 * further one is sent (SX499; PostGraphile then ends the transaction by closing the
 * connection). A client a cancel was sent for is closed when released, not pooled: the cancel
 * may land after its statement ended, and must not cancel the next caller's.
 */
export function withCallerCancel(pool: pg.Pool): pg.Pool {
  const view = Object.create(pool) as pg.Pool;
  view.connect = (async () => {
    const signal = callerSignal.getStore();
    if (signal?.aborted) throw callerGoneError();
    const client = await pool.connect();
    if (!signal) return client;
    if (signal.aborted) {
      // Gone while the pool found a connection: nothing ran on it.
      client.release();
      throw callerGoneError();
    }
    const stopWatching = cancelOnAbort(pool, client, signal);
    const { query, release } = client;
    client.query = ((...args: unknown[]) => {
      if (!signal.aborted) return (query as (...a: unknown[]) => unknown).apply(client, args);
      const callback = args.at(-1);
      if (typeof callback === "function") return void callback(callerGoneError());
      return Promise.reject(callerGoneError());
    }) as pg.PoolClient["query"];
    client.release = ((error?: Error | boolean) => {
      client.query = query;
      client.release = release;
      const cancelling = stopWatching();
      if (!cancelling) return release.call(client, error);
      void cancelling.then(() => release.call(client, true));
    }) as pg.PoolClient["release"];
    return client;
  }) as pg.Pool["connect"];
  return view;
}
