import type pg from "pg";
import type { Principal } from "../auth/principal.ts";
import { toPgSettings } from "../auth/pgSettings.ts";

/**
 * Runs `fn` in one transaction as the principal's role, read-only unless `write`; rolls back
 * unless `commit`, so settings, role and anything the call did end with it.
 */
export async function withRole<T>(
  pool: pg.Pool,
  principal: Principal,
  fn: (client: pg.PoolClient) => Promise<T>,
  { commit = false, write = false } = {},
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(write ? "begin" : "begin read only");
    await client.query("select set_config(key, value, true) from json_each_text($1::json)", [
      JSON.stringify(toPgSettings(principal)),
    ]);
    const result = await fn(client);
    await client.query(commit ? "commit" : "rollback");
    return result;
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
