import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { addSource } from "../../src/sources/index.ts";
import { asRole, createToken, withTx } from "../helpers/db.ts";
import { callOk, callRows, connectHttp, textOf } from "../helpers/mcpClient.ts";
import { useSourceServer } from "../helpers/remotePg.ts";

// Attacks on sources (issue 18): each asserts the refusal, that nothing changed (read as
// admin), and that the server still answers.
const PASSWORD = "Hostile-Remote-Passw0rd-4412";
let allow: string[];
const { remote, db, server, withAdmin } = useSourceServer(
  `
    create role sx_writer login password '${PASSWORD}';
    create schema hostile;
    -- Names a remote server chooses, pasted nowhere: quoted identifiers all the way.
    create table hostile."x""; drop table acme_sales.orders; --" ("a""b); select 1; --" int, "Upper Case" text);
    insert into hostile."x""; drop table acme_sales.orders; --" values (1, 'one');
    create view hostile.slow as select pg_sleep(5)::text as slept;
    grant all on schema hostile to sx_writer;
    grant all on all tables in schema hostile to sx_writer;`,
  async ({ remote, db }) => {
    allow = [`127.0.0.1:${remote.port}`];
    // A short statement timeout, which the remote session takes over.
    await db.admin.query("update sextant.tenants set statement_timeout_ms = 1000 where slug = 'acme'");
    await add("warehouse");
  },
);
let acme: Client;

/** What an attack could change: servers, mappings, roles, schemas, the tenants' tables. */
const SNAPSHOT = `
  select (select count(*) from pg_foreign_server)::int as servers,
         (select count(*) from pg_user_mapping)::int as mappings,
         (select count(*) from pg_roles)::int as roles,
         (select count(*) from pg_namespace)::int as schemas,
         (select count(*) from pg_class)::int as relations,
         (select count(*) from acme_sales.orders)::int as orders,
         (select count(*) from sextant.sources)::int as sources`;
const snapshot = async () => (await db.admin.query(SNAPSHOT)).rows[0];

async function healthy() {
  const r = (await callRows(acme, "query", { sql: "select count(*)::int as n from acme_sales.orders" })) as { rows: unknown[] };
  expect(r.rows).toEqual([{ n: 50 }]);
}

function add(name: string, opts: { tenant?: string; url?: string; schemas?: string[] } = {}) {
  return withAdmin((c) => addSource(c, allow, { tenant: opts.tenant ?? "acme", name, url: opts.url ?? remote.url("sx_writer", PASSWORD), schemas: opts.schemas ?? ["hostile"] }));
}

beforeAll(async () => {
  acme = (await connectHttp(server.url, await createToken(db, "acme", "mallory", "admin"))).client;
});

afterAll(async () => {
  await acme?.close();
});

describe("hostile sources", () => {
  test("remote table and column names that look like SQL stay names", async () => {
    const before = await snapshot();
    const { rows } = (await callOk(acme, "list_tables", { schema: "warehouse_hostile" })) as { rows: { table_name: string }[] };
    expect(rows.map((r) => r.table_name)).toContain('x"; drop table acme_sales.orders; --');
    const q = (await callRows(acme, "query", { sql: 'select "a""b); select 1; --" as a, "Upper Case" as u from warehouse_hostile."x""; drop table acme_sales.orders; --"' })) as { rows: unknown[] };
    expect(q.rows).toEqual([{ a: 1, u: "one" }]);
    expect(await snapshot()).toEqual(before);
    await healthy();
  });

  test("a tenant cannot become the role the user mapping is for", async () => {
    const before = await snapshot();
    await withTx(db.auth, async (c) => {
      for (const [sql, code] of [
        ["select set_config('role', 'sextant_t_acme__remote', true)", "42501"],
        ["set local role sextant_t_acme__remote", "42501"],
      ] as const) {
        await c.query("savepoint t");
        await expect(c.query(sql), sql).rejects.toMatchObject({ code });
        await c.query("rollback to savepoint t");
      }
      await asRole(c, "sextant_t_acme__admin");
      await expect(c.query("set local role sextant_t_acme__remote")).rejects.toMatchObject({ code: "42501" });
    });
    const r = await acme.callTool({ name: "query", arguments: { sql: "select set_config('role', 'sextant_t_acme__remote', true)" } });
    expect(r.isError).toBe(true);
    expect(await snapshot()).toEqual(before);
    await healthy();
  });

  test("a slow remote query is cancelled by the tenant's statement timeout, on the remote side too", async () => {
    const before = await snapshot();
    const started = Date.now();
    const r = await acme.callTool({ name: "query", arguments: { sql: "select * from warehouse_hostile.slow" } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/statement timeout/);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await snapshot()).toEqual(before);
    // Nothing keeps running remotely.
    const active = await remote.sql("select count(*)::int as n from pg_stat_activity where query like '%slow%' and state = 'active' and pid <> pg_backend_pid()");
    expect(active).toEqual([{ n: 0 }]);
    await healthy();
  });

  test("source names, schema names and URLs that try to smuggle SQL or settings are refused before anything is made", async () => {
    const before = await snapshot();
    const attempts: [string, Parameters<typeof add>[1], RegExp][] = [
      ["x'; drop table acme_sales.orders; --", {}, /source name .* is invalid/],
      ["ok", { schemas: ["hostile; drop schema acme_sales cascade"] }, /not a plain lower-case identifier/],
      ["ok", { schemas: ["pg_catalog"] }, /not a plain lower-case identifier/],
      ["ok", { url: `${remote.url("sx_writer", PASSWORD)}?options=-c%20default_transaction_read_only%3Doff` }, /may not set options/],
      ["ok", { url: `${remote.url("sx_writer", PASSWORD)}?host=169.254.169.254` }, /may not set host/],
      ["ok", { tenant: "nosuch" }, /tenant nosuch does not exist/],
      ["t", { schemas: ["globex__x"] }, /source name t is reserved/],
      ["sextant", { schemas: ["stage_x"] }, /source name sextant is reserved/],
      ["acme", { schemas: ["sales"] }, /schema acme_sales already exists/],
    ];
    for (const [name, opts, message] of attempts) {
      const err = await add(name, opts).then(() => undefined, (e: Error) => e);
      expect(err, name).toBeInstanceOf(Error);
      expect(err!.message, name).toMatch(message);
      expect(err!.message).not.toContain(PASSWORD);
    }
    expect(await snapshot()).toEqual(before);
    await healthy();
  });
});
