import type pg from "pg";
import type { Principal } from "../auth/principal.ts";
import { toPgSettings } from "../auth/pgSettings.ts";
import "./pgTypes.ts";

/**
 * What a rollback leaves on a pooled connection: session advisory locks. (Settings and role
 * end with the transaction; prepared statements, LISTEN and temp objects cannot be made by
 * the read-only cursor path.) Sent in the same round trip as the rollback.
 */
const CLEANUP = "select pg_catalog.pg_advisory_unlock_all()";

/** `begin` plus the principal's settings as one simple-protocol round trip (values quoted). */
function beginSql(client: pg.PoolClient, principal: Principal, write: boolean): string {
  const settings = Object.entries(toPgSettings(principal))
    .map(([k, v]) => `set_config(${client.escapeLiteral(k)}, ${client.escapeLiteral(v)}, true)`)
    .join(", ");
  return `${write ? "begin" : "begin read only"}; select ${settings}`;
}

/** A value as a SQL literal: null, a finite number or a boolean as is, anything else quoted. */
function literal(client: pg.PoolClient, value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return String(value);
  return client.escapeLiteral(typeof value === "string" ? value : JSON.stringify(value));
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
 * Runs `fn` in one transaction as the principal's role, read-only unless `write`; rolls back
 * unless `commit`, so settings, role and anything the call did end with it. A connection
 * whose cleanup fails is destroyed, never returned to the pool. After a read, the result is
 * returned while the rollback is still on its way (the connection goes back to the pool only
 * once it is done). With `first`, that statement travels with `begin` and the settings in the
 * same round trip, and `fn` gets its rows: one round trip per call in all.
 */
export async function withRole<T>(
  pool: pg.Pool,
  principal: Principal,
  fn: (client: pg.PoolClient, firstRows?: Record<string, unknown>[]) => Promise<T>,
  { commit = false, write = false, first }: { commit?: boolean; write?: boolean; first?: { sql: string; args: unknown[] } } = {},
): Promise<T> {
  const client = await pool.connect();
  let result: T;
  try {
    const begin = beginSql(client, principal, write);
    if (first) {
      const results = (await client.query(`${begin}; ${inlineParams(client, first.sql, first.args)}`)) as unknown as pg.QueryResult[];
      result = await fn(client, results.at(-1)!.rows);
    } else {
      await client.query(begin);
      result = await fn(client);
    }
  } catch (error) {
    await client.query(`rollback; ${CLEANUP}`).then(() => client.release(), (e: Error) => client.release(e));
    throw error;
  }
  if (commit) {
    try {
      await client.query(`commit; ${CLEANUP}`);
    } catch (error) {
      client.release(error as Error);
      throw error;
    }
    client.release();
  } else {
    client.query(`rollback; ${CLEANUP}`).then(() => client.release(), (e: Error) => client.release(e));
  }
  return result;
}
