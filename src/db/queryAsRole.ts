import type pg from "pg";
import type { Principal } from "../auth/principal.ts";
import { settingsSql } from "../auth/pgSettings.ts";
import { currentTraceparent } from "../telemetry/tracing.ts";
import { cancelOnAbort } from "./cancel.ts";
import { callerGoneError, failedForCallerGone } from "./errors.ts";
import { isStandbyFailure, readReplicaOf } from "./pool.ts";
import "./pgTypes.ts";

/**
 * What a rollback leaves on a pooled connection: session advisory locks. (Settings and role
 * end with the transaction; prepared statements, LISTEN and temp objects cannot be made by
 * the read-only cursor path.) Sent in the same round trip as the rollback (or commit).
 */
const CLEANUP = "select pg_catalog.pg_advisory_unlock_all()";

/** How every call ends that does not commit; tests that stand in for a door end the same way. */
export const ROLLBACK_AND_CLEANUP = `rollback; ${CLEANUP}`;

/** `begin` plus the principal's settings as one simple-protocol round trip (values quoted). */
function beginSql(client: pg.PoolClient, principal: Principal, write: boolean): string {
  // With tracing on, the session is named after the operation's span (pg_stat_activity, logs).
  return `${write ? "begin" : "begin read only"}; ${settingsSql(client, principal, currentTraceparent())}`;
}

/** A JavaScript array as PostgreSQL's array text (what pg sends for an array parameter). */
function arrayText(values: unknown[]): string {
  const element = (v: unknown): string =>
    v === null || v === undefined ? "NULL"
    : Array.isArray(v) ? arrayText(v)
    : `"${(typeof v === "string" ? v : JSON.stringify(v)).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return `{${values.map(element).join(",")}}`;
}

/**
 * pg's escapeLiteral, the same text for every string (test/principal.test.ts holds them equal),
 * without its character-by-character loop: quotes and backslashes doubled, and ` E` before the
 * literal when it holds a backslash (so the doubled ones are read as one).
 */
export function escapeLiteral(text: string): string {
  if (typeof text !== "string") return "''";
  const quoted = `'${text.replace(/['\\]/g, "$&$&")}'`;
  return text.includes("\\") ? ` E${quoted}` : quoted;
}

/**
 * A value as a SQL literal: null, a finite number or a boolean as is, an array as array text
 * (cast by the statement, e.g. `$1::text[]`), anything else quoted (objects as JSON).
 */
function literal(client: pg.PoolClient, value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return escapeLiteral(arrayText(value));
  return escapeLiteral(typeof value === "string" ? value : JSON.stringify(value));
}

/**
 * `sql` with its $1..$n replaced by literals. Only for Sextant's own fixed statements (one
 * function call each, no other `$` in the text); user text becomes a quoted string literal
 * (pg's escapeLiteral), exactly what a bind parameter would carry.
 */
export function inlineParams(client: pg.PoolClient, sql: string, args: unknown[]): string {
  return sql.replace(/\$(\d+)/g, (_m, n: string) => literal(client, args[Number(n) - 1]));
}

/**
 * Runs one of Sextant's own statements (`sql` with $1..$n bound to `args`) in a transaction as
 * the principal's role and returns its rows. `begin`, the settings and the statement travel in
 * one round trip, and so does its end: a read is read-only and rolled back, a `write`
 * commits, both before returning. Settings, role and anything a read did end with its
 * transaction; a connection whose cleanup fails is destroyed, never returned to the pool.
 *
 * With a read replica attached to `pool` (src/db/pool.ts), a read runs on the standby when it
 * is up and not lagging, and again on the primary if the standby fails it; writes, and the
 * writer's reads for a while after, stay on the primary.
 */
export async function queryAsRole(
  pool: pg.Pool,
  principal: Principal,
  sql: string,
  args: unknown[],
  { write = false, admit, signal }: { write?: boolean; admit?: Admission; signal?: AbortSignal } = {},
): Promise<Record<string, unknown>[]> {
  const replica = readReplicaOf(pool);
  const who = `${principal.tenant}\u0000${principal.subject}`;
  if (write) {
    const rows = await runAsRole(pool, principal, sql, args, true, admit?.sql, signal);
    replica?.wrote(who);
    return rows;
  }
  const standby = replica?.pick(who);
  if (standby) {
    if (admit) await admit.alone(); // counted on the primary; the standby cannot write
    try {
      return await runAsRole(standby, principal, sql, args, false, undefined, signal);
    } catch (error) {
      if (!isStandbyFailure(error)) throw error;
      replica!.failed();
    }
    return runAsRole(pool, principal, sql, args, false, undefined, signal);
  }
  return runAsRole(pool, principal, sql, args, false, admit?.sql, signal);
}

/**
 * A statement that must commit on the primary before the call (the rate-limit admission,
 * src/audit/rateLimiter.ts): sent ahead of the call in its round trip, or `alone` first when
 * the call goes to a standby. When it fails, nothing of the call runs.
 */
export interface Admission {
  sql: string;
  alone(): Promise<void>;
}

/** Clients that already have an 'error' listener (see runAsRole). */
const listening = new WeakSet<pg.PoolClient>();

async function runAsRole(pool: pg.Pool, principal: Principal, sql: string, args: unknown[], write: boolean, before?: string, signal?: AbortSignal): Promise<Record<string, unknown>[]> {
  if (signal?.aborted) throw callerGoneError();
  const client = await pool.connect();
  if (signal?.aborted) {
    client.release();
    throw callerGoneError();
  }
  // A server that goes away (a standby stopping: 57P01) may say so between two of our queries,
  // when pg has no query to fail and emits 'error' on the client instead; unheard, that would
  // end the process. The next query on it fails, and the client is then destroyed.
  if (!listening.has(client)) {
    client.on("error", () => {});
    listening.add(client);
  }
  // The ending (commit or rollback, and the cleanup) travels in the same round trip: a
  // statement that fails skips the rest, and the connection is then rolled back here. A write
  // commits last, so a cancel (a caller gone) that fails the round trip came before the commit.
  const end = write ? `${CLEANUP}; commit` : ROLLBACK_AND_CLEANUP;
  let rows: Record<string, unknown>[] = [];
  let failure: { error: unknown } | undefined;
  // A caller that goes away mid-call (an HTTP client closing, an MCP notifications/cancelled)
  // cancels the statement instead of leaving it to run to the statement timeout.
  const stopWatching = cancelOnAbort(pool, client, signal);
  try {
    const text = `${before ? `${before}; ` : ""}${beginSql(client, principal, write)}; ${inlineParams(client, sql, args)}; ${end}`;
    rows = ((await client.query(text)) as unknown as pg.QueryResult[]).at(-3)!.rows; // before the ending's two
  } catch (error) {
    failure = { error };
  }
  // Before any rollback: a cancel sent for that could reach a connection back in the pool.
  const cancelling = stopWatching();
  if (cancelling) {
    // A cancelled call's connection is closed, not pooled (its transaction ends with it). A call
    // done before the cancel landed (a write committed) stands; one that failed for its own
    // reason (before the cancel landed, or a cancel that never arrived) keeps that reason.
    await cancelling;
    client.release(true);
    if (failure) throw failedForCallerGone(failure.error) ? callerGoneError() : failure.error;
    return rows;
  }
  if (failure) {
    await client.query(ROLLBACK_AND_CLEANUP).then(() => client.release(), (e: Error) => client.release(e));
    throw failure.error;
  }
  client.release();
  return rows;
}
