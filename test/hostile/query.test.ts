import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ROLLBACK_AND_CLEANUP } from "../../src/db/queryAsRole.ts";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { asRole, createToken } from "../helpers/db.ts";
import { connectHttp, textOf } from "../helpers/mcpClient.ts";
import { useServer, useTestDatabase } from "../helpers/setup.ts";
import { hostileQueries } from "./query.corpus.ts";

const db = useTestDatabase();
let acme: Client;

/** Everything a hostile query could change or leave behind, read as admin. */
const SNAPSHOT = `
  select (select count(*) from acme_sales.orders)::int as orders,
         (select sum(amount) from acme_sales.orders)::text as order_total,
         (select count(*) from globex_ops.shipments)::int as shipments,
         (select count(*) from pg_roles)::int as roles,
         (select count(*) from pg_class)::int as relations,
         (select count(*) from pg_proc)::int as functions,
         (select count(*) from pg_namespace)::int as schemas,
         (select count(*) from pg_locks where locktype = 'advisory')::int as advisory_locks,
         (select count(*) from pg_largeobject_metadata)::int as large_objects,
         (select last_value from acme_sales.order_seq)::int as sequence_value,
         (select string_agg(slug || ':' || max_rows || ':' || statement_timeout_ms, ',' order by slug) from sextant.tenants) as tenants,
         (select count(*) from sextant_private.api_tokens)::int as tokens,
         (select obj_description('acme_sales.orders'::regclass, 'pg_class')) as comment,
         (select count(*) from pg_stat_activity where usename = 'sextant_authenticator' and state like 'idle in transaction%')::int as stuck`;

const SECRETS = [/globex secret/, /SCRAM-SHA-256/, /authenticator_password/];

beforeAll(async () => {
  await db.admin.query(`set role sextant_owner; create sequence acme_sales.order_seq; reset role;
    grant usage, select on sequence acme_sales.order_seq to sextant_t_acme;
    update sextant.tenants set statement_timeout_ms = 1000 where slug = 'acme';`);
});
// Started once the tenant's limits above are set.
const server = useServer(db);
beforeAll(async () => {
  acme = (await connectHttp(server.url, await createToken(db, "acme", "mallory"))).client;
});
afterAll(async () => {
  await acme?.close();
});

async function snapshot() {
  return (await db.admin.query(SNAPSHOT)).rows[0];
}

/**
 * The database alone: sextant.query() as the tenant role, no parser guard, ended the way every
 * server door ends a call (rollback, then release session advisory locks: pool hygiene).
 */
async function throughDatabase(sql: string): Promise<{ code?: string; text: string }> {
  const client = await db.auth.connect();
  try {
    await client.query("begin");
    await asRole(client, "sextant_t_acme");
    await client.query("set local statement_timeout = 1000");
    const { rows } = await client.query("select * from sextant.query($1)", [sql]);
    return { text: JSON.stringify(rows) };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return { code: e.code ?? "error", text: e.message ?? "" };
  } finally {
    await client.query(ROLLBACK_AND_CLEANUP);
    client.release();
  }
}

describe(`hostile SQL corpus (${hostileQueries.length} cases)`, () => {
  test.each(hostileQueries.map((h) => [h.name, h] as const))("%s", async (_name, h) => {
    const before = await snapshot();

    const viaTool = await acme.callTool({ name: "query", arguments: { sql: h.sql } });
    const toolText = textOf(viaTool);
    if (h.guard === "ok") expect(viaTool.isError, toolText).toBeFalsy();
    else expect(toolText).toMatch(new RegExp(`^error ${h.guard}:`));

    const viaDb = await throughDatabase(h.sql);
    if (h.db === "ok") expect(viaDb.code, viaDb.text).toBeUndefined();
    else if (h.db === "error") expect(viaDb.code, viaDb.text).toBeDefined();
    else expect(viaDb.code, viaDb.text).toBe(h.db);

    // Whatever the query, what comes back stays within the tenant's byte cap (2 MB); errors are
    // cut where the server maps them (src/db/errors.ts), so only the tool's text is checked there.
    expect(toolText.length).toBeLessThan(2_100_000);
    if (!viaDb.code) expect(viaDb.text.length).toBeLessThan(2_100_000);
    for (const secret of SECRETS) {
      expect(toolText).not.toMatch(secret);
      expect(viaDb.text).not.toMatch(secret);
    }
    expect(await snapshot()).toEqual(before);
  });

  test("the corpus is large enough to mean something", () => {
    expect(hostileQueries.length).toBeGreaterThanOrEqual(100);
    expect(new Set(hostileQueries.map((h) => h.name)).size).toBe(hostileQueries.length);
  });
});
