/**
 * Hostile psql logins: a "read-only" analyst login (`sextant analyst create`) connects with its
 * password, leaves read-only mode (`begin read write`) and tries every way to leave something
 * behind that outlives its session. Privileges alone must refuse each (42501), and the owner's
 * connection must find nothing left over. The parser guard is not in this path at all.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { useTestDatabase } from "../helpers/setup.ts";

const db = useTestDatabase();
const login = `mallory_${randomBytes(4).toString("hex")}`;
const password = randomBytes(18).toString("base64url");
let loginUrl: string;

beforeAll(async () => {
  await db.admin.query(`set role sextant_owner; create sequence acme_sales.order_seq; reset role;
    select sextant_private.map_schema('acme', 'acme_sales');
    select sextant_private.create_analyst_login('acme', '${login}', '${password}');`);
  const u = new URL(db.adminUrl);
  u.username = login;
  u.password = password;
  loginUrl = u.toString();
});
afterAll(async () => {
  // Login roles are cluster-wide: leave none behind for other files.
  await db.admin.query(`drop owned by ${login}; drop role if exists ${login}`).catch(() => {});
});

/** Everything a login could leave behind, read from the admin connection. */
async function leftovers() {
  const { rows } = await db.admin.query(
    `select (select count(*) from pg_class where relowner = r.oid)::int as relations,
            (select count(*) from pg_proc where proowner = r.oid)::int as functions,
            (select count(*) from pg_type where typowner = r.oid)::int as types,
            (select count(*) from pg_namespace where nspowner = r.oid)::int as schemas,
            (select count(*) from pg_largeobject_metadata)::int as large_objects,
            (select count(*) from pg_class where relpersistence = 't')::int as temp_relations,
            (select count(*) from pg_publication)::int as publications,
            (select count(*) from pg_extension)::int as extensions,
            (select count(*) from pg_prepared_xacts)::int as prepared_transactions,
            (select last_value from acme_sales.order_seq)::int as sequence_value,
            (select is_called from acme_sales.order_seq) as sequence_called,
            (select count(*) from acme_sales.orders)::int as orders,
            (select coalesce(array_agg(p.relacl::text order by p.oid), '{}') from pg_class p
              where p.relnamespace = 'acme_sales'::regnamespace)::text as table_grants
     from pg_roles as r where r.rolname = $1`,
    [login],
  );
  return rows[0];
}

/** Runs `sql` in a read-write transaction of the analyst login; returns the error code or "ok". */
async function asLoginReadWrite(sql: string): Promise<string> {
  const c = new pg.Client({ connectionString: loginUrl });
  c.on("error", () => {});
  await c.connect();
  try {
    await c.query("begin read write");
    await c.query(sql);
    await c.query("commit");
    return "ok";
  } catch (error) {
    await c.query("rollback").catch(() => {});
    return (error as { code?: string }).code ?? "error";
  } finally {
    await c.end();
  }
}

/** Each way a read-write transaction could leave an object behind, and the code it must get. */
const attacks: [string, string, string][] = [
  ["temporary table", "create temp table t (x int)", "42501"],
  ["temporary table from a query", "create temporary table t as select * from acme_sales.orders", "42501"],
  ["SELECT INTO a temporary table", "select * into temp t from acme_sales.orders", "42501"],
  ["temporary view", "create temp view v as select 1", "42501"],
  ["temporary sequence", "create temp sequence s", "42501"],
  ["temporary function in pg_temp", "create function pg_temp.f() returns int language sql as 'select 1'", "42501"],
  ["large object by lo_create", "select lo_create(0)", "42501"],
  ["large object by lo_creat", "select lo_creat(-1)", "42501"],
  ["large object from bytea", "select lo_from_bytea(0, 'payload')", "42501"],
  ["large object import from the server's files", "select lo_import('/etc/passwd')", "42501"],
  ["write into a large object", "select lowrite(lo_open(1, 131072), 'x')", "42501"],
  ["put into a large object", "select lo_put(1, 0, 'x')", "42501"],
  ["table in public", "create table public.t (x int)", "42501"],
  ["table in its tenant's schema", "create table acme_sales.t (x int)", "42501"],
  ["view in its tenant's schema", "create view acme_sales.v as select 1", "42501"],
  ["type in its tenant's schema", "create type acme_sales.mood as enum ('sad')", "42501"],
  ["function in its tenant's schema", "create function acme_sales.f() returns int language sql as 'select 1'", "42501"],
  ["function in public", "create function public.f() returns int language sql as 'select 1'", "42501"],
  ["a schema", "create schema mallory", "42501"],
  ["a trusted extension not installed yet", "do $$ begin execute format('create extension %I schema acme_sales', (select v.name from pg_available_extension_versions as v where v.trusted and v.requires is null and v.name not in (select extname from pg_extension) order by v.name limit 1)); end $$", "42501"],
  ["a publication", "create publication p for all tables", "42501"],
  ["advance a tenant sequence", "select nextval('acme_sales.order_seq')", "42501"],
  ["set a tenant sequence", "select setval('acme_sales.order_seq', 1000)", "42501"],
  ["insert into a tenant table", "insert into acme_sales.orders select * from acme_sales.orders limit 1", "42501"],
  ["delete from a tenant table", "delete from acme_sales.orders", "42501"],
  ["comment on a tenant table", "comment on table acme_sales.orders is 'pwned'", "42501"],
  ["analyze a tenant table (statistics)", "analyze acme_sales.orders", "ok"], // PostgreSQL skips tables the role may not maintain, with a warning
  ["a materialized view in a temp schema", "create materialized view pg_temp.m as select 1", "42501"],
  ["a prepared (two-phase) transaction holding locks", "select 1 from acme_sales.orders limit 1; prepare transaction 'mallory'", "55000"], // max_prepared_transactions = 0
];

describe(`a read-write transaction of a read-only psql login leaves nothing behind (${attacks.length} attacks)`, () => {
  test.each(attacks)("%s", async (_name, sql, code) => {
    const before = await leftovers();
    expect(await asLoginReadWrite(sql)).toBe(code);
    expect(await leftovers()).toEqual(before);
  });

  test("the login is still healthy and reads its tenant afterwards", async () => {
    const c = new pg.Client({ connectionString: loginUrl });
    await c.connect();
    try {
      const { rows } = await c.query(
        "select current_setting('transaction_read_only') as ro, sextant.current_tenant() as t, count(*)::int as n from acme_sales.orders",
      );
      expect(rows[0]).toMatchObject({ ro: "on", t: "acme", n: 50 });
      // Reading a sequence still works (SELECT), moving it does not (no USAGE).
      expect((await c.query("select last_value from acme_sales.order_seq")).rows[0].last_value).toBeDefined();
    } finally {
      await c.end();
    }
  });

  test("a login may change its own session defaults (PostgreSQL allows it); they change nothing it may do", async () => {
    expect(await asLoginReadWrite(
      `alter role ${login} set default_transaction_read_only = off; alter role ${login} set statement_timeout = 0`,
    )).toBe("ok");
    try {
      const before = await leftovers();
      const c = new pg.Client({ connectionString: loginUrl });
      await c.connect();
      try {
        expect((await c.query("show default_transaction_read_only")).rows[0].default_transaction_read_only).toBe("off");
        for (const sql of ["delete from acme_sales.orders", "create temp table t (x int)", "select lo_create(0)", "select nextval('acme_sales.order_seq')"]) {
          await expect(c.query(sql), sql).rejects.toMatchObject({ code: "42501" });
        }
      } finally {
        await c.end();
      }
      expect(await leftovers()).toEqual(before);
    } finally {
      await db.admin.query(`alter role ${login} set default_transaction_read_only = on; alter role ${login} set statement_timeout = 15000`);
    }
  });

  test("no tenant or login role may create in any schema of the database", async () => {
    const { rows } = await db.admin.query(
      `select r.rolname, n.nspname
       from pg_roles as r, pg_namespace as n
       where r.rolname in (select unnest(array[t.reader_role, t.reader_role || '__analyst', t.reader_role || '__admin'])
                           from sextant.tenants as t union select $1)
         and has_schema_privilege(r.oid, n.oid, 'CREATE')`,
      [login],
    );
    expect(rows).toEqual([]);
    const { rows: db2 } = await db.admin.query(
      `select r.rolname from pg_roles as r
       where r.rolname in (select unnest(array[t.reader_role, t.reader_role || '__analyst', t.reader_role || '__admin'])
                           from sextant.tenants as t union select $1)
         and (has_database_privilege(r.oid, current_database(), 'TEMPORARY') or has_database_privilege(r.oid, current_database(), 'CREATE'))`,
      [login],
    );
    expect(db2).toEqual([]);
  });
});
