import type pg from "pg";

/**
 * Runs `fn` in one transaction on `client`: `begin` (or the statement given, e.g.
 * "begin transaction read only"), then `commit`, or `rollback` when `fn` throws. A failing
 * rollback (the connection is gone) is ignored, so the caller sees the error that caused it.
 * The client must not be shared by concurrent callers while this runs.
 */
export async function inTransaction<T, C extends pg.ClientBase>(client: C, fn: (client: C) => Promise<T>, begin = "begin"): Promise<T> {
  await client.query(begin);
  try {
    const result = await fn(client);
    await client.query("commit");
    return result;
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  }
}
