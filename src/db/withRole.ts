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

/**
 * Runs `fn` in one transaction as the principal's role, read-only unless `write`; rolls back
 * unless `commit`, so settings, role and anything the call did end with it. A connection
 * whose cleanup fails is destroyed, never returned to the pool. After a read, the result is
 * returned while the rollback is still on its way (the connection goes back to the pool only
 * once it is done): one round trip less per call.
 */
export async function withRole<T>(
  pool: pg.Pool,
  principal: Principal,
  fn: (client: pg.PoolClient) => Promise<T>,
  { commit = false, write = false } = {},
): Promise<T> {
  const client = await pool.connect();
  let result: T;
  try {
    await client.query(beginSql(client, principal, write));
    result = await fn(client);
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
