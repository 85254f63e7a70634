import { randomBytes } from "node:crypto";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runCli } from "./helpers/cli.ts";
import { asRole, createToken, withTx } from "./helpers/db.ts";
import { callOk, callRows, connectHttp, textOf } from "./helpers/mcpClient.ts";
import { useServer, useTestDatabase } from "./helpers/setup.ts";

// The user's own database (issue 14): tables in `public` and in a schema that another role owns
// and fills (the role dbt builds with), some created only after the tenant exists.
const suffix = randomBytes(3).toString("hex");
const DBT = `dbt_builder_${suffix}`; // roles are cluster-wide: one name per run
const APP = `app_owner_${suffix}`;
const PASSWORD = "dbt-builder-password-0123456789";
// Registered before the database, so it runs after the drop: roles outlive the database
// (cluster-wide), and once their database is gone they own nothing and can simply go.
afterAll(async () => {
  const m = new pg.Client({ connectionString: db.adminUrl.replace(/\/[^/]+$/, "/postgres") });
  await m.connect();
  await m.query(`drop role if exists ${DBT}; drop role if exists ${APP}`).catch(() => {});
  await m.end();
});
const db = useTestDatabase();
let shop: Client;
let acme: Client;

/** Runs SQL as the dbt role, logged in as itself (not through SET ROLE from a superuser). */
async function asDbt(sql: string): Promise<void> {
  const url = new URL(db.adminUrl);
  url.username = DBT;
  url.password = PASSWORD;
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await db.admin.query(`
    create role ${DBT} login password '${PASSWORD}';
    create role ${APP} nologin;
    grant connect on database ${db.name} to ${DBT};
    create schema marts authorization ${DBT};
    grant create, usage on schema public to ${DBT}, ${APP};
    set role ${APP};
    create table public.films (id int primary key, title text not null);
    comment on table public.films is 'Films of the app';
    insert into public.films select i, 'film ' || i from generate_series(1, 30) as i;
    grant select, references on public.films to ${DBT};
    reset role;`);
  await asDbt(`
    create table marts.revenue (film_id int references public.films, amount numeric not null);
    insert into marts.revenue select i, i * 2 from generate_series(1, 30) as i;`);
  const cli = await runCli(["tenant", "create", "shop", "--schema", "public", "--schema", "marts", "--table-owner", DBT], { DATABASE_URL: db.adminUrl });
  expect(cli.stderr).toBe("");
  expect(cli.stdout).toMatch(/tenant shop created/);
  // dbt's next run, after the tenant exists: a new table, and one rebuilt under the same name.
  await asDbt(`
    create table marts.daily (day date primary key, films int not null);
    insert into marts.daily values ('2026-12-01', 3);
    create table public.dbt_seed (k text);
    drop table marts.revenue;
    create table marts.revenue (film_id int, amount numeric not null);
    insert into marts.revenue values (1, 99);`);
}, 120_000);
// Started once the tenant and dbt's tables above exist.
const server = useServer(db);
beforeAll(async () => {
  shop = (await connectHttp(server.url, await createToken(db, "shop", "shop-analyst", "analyst"))).client;
  acme = (await connectHttp(server.url, await createToken(db, "acme", "acme-viewer"))).client;
});
afterAll(async () => {
  await shop?.close();
  await acme?.close();
});

describe("a tenant given public and a schema owned by the dbt role", () => {
  test("list_tables shows the tables in public and in dbt's schema, including those created after the tenant", async () => {
    const { rows } = (await callOk(shop, "list_tables", {})) as { rows: { schema_name: string; table_name: string }[] };
    const names = rows.map((r) => `${r.schema_name}.${r.table_name}`);
    expect(names).toEqual(expect.arrayContaining(["public.films", "public.dbt_seed", "marts.daily", "marts.revenue"]));
  });

  test("describe_table, sample_table and get_metadata work on a table dbt created later", async () => {
    const described = textOf(await shop.callTool({ name: "describe_table", arguments: { schema: "marts", table: "daily" } }));
    expect(described).toMatch(/films/);
    expect(described).toMatch(/day/);
    const sample = await callRows(shop, "sample_table", { schema: "marts", table: "daily" });
    expect(JSON.stringify(sample)).toContain("2026-12-01");
    const meta = textOf(await shop.callTool({ name: "get_metadata", arguments: { schema: "public" } }));
    expect(meta).toMatch(/films/);
  });

  test("query reads public (unqualified) and the rebuilt dbt table, with column types", async () => {
    const r = (await callRows(shop, "query", { sql: "select f.title, r.amount from films f join marts.revenue r on r.film_id = f.id" })) as {
      columns: { name: string; type: string }[];
      rows: Record<string, unknown>[];
    };
    expect(r.columns).toEqual([{ name: "title", type: "text" }, { name: "amount", type: "numeric" }]);
    expect(r.rows).toEqual([{ title: "film 1", amount: 99 }]);
  });

  test("another tenant cannot read public's or dbt's tables, by tool or by role", async () => {
    const r = await acme.callTool({ name: "query", arguments: { sql: "select * from public.films" } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/SX404|cannot read/);
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      await expect(client.query("select * from marts.daily")).rejects.toMatchObject({ code: "42501" });
    });
  });

  test("the tenant's roles cannot create tables in public, even where PUBLIC once could", () =>
    withTx(db.admin, async (client) => {
      const { rows } = await client.query(
        `select has_schema_privilege('sextant_t_shop__admin', 'public', 'create') as admin_creates,
                has_schema_privilege('public', 'public', 'create') as public_creates`,
      );
      expect(rows[0]).toEqual({ admin_creates: false, public_creates: false });
    }));

  test("with a deny list, tables created later stay hidden until the filters run again (fail closed)", async () => {
    await db.admin.query("update sextant.tenants set excluded_tables = '{marts.secret%}' where slug = 'shop'");
    await db.admin.query("select sextant_private.apply_table_filters('shop')");
    await asDbt("create table marts.secret_costs (x int); create table marts.open_later (x int)");
    const before = (await db.admin.query(
      "select has_table_privilege('sextant_t_shop', 'marts.secret_costs', 'select') as s, has_table_privilege('sextant_t_shop', 'marts.open_later', 'select') as o",
    )).rows[0];
    expect(before).toEqual({ s: false, o: false });
    await db.admin.query("select sextant_private.apply_table_filters('shop')");
    const after = (await db.admin.query(
      "select has_table_privilege('sextant_t_shop', 'marts.secret_costs', 'select') as s, has_table_privilege('sextant_t_shop', 'marts.open_later', 'select') as o",
    )).rows[0];
    expect(after).toEqual({ s: false, o: true });
    await db.admin.query("update sextant.tenants set excluded_tables = '{}' where slug = 'shop'");
    await db.admin.query("select sextant_private.apply_table_filters('shop')");
  });
});

describe("mapping a schema the admin cannot grant on", () => {
  test("is refused up front with who must do what, and grants nothing", async () => {
    const role = `lone_${suffix}`;
    await db.admin.query(`create role ${role} nologin createrole; create schema lone_${suffix} authorization ${DBT}`);
    try {
      await db.admin.query(`grant sextant_owner to ${role}`);
      const c = await db.admin.connect();
      try {
        await c.query(`set role ${role}`);
        await expect(c.query(`select sextant_private.map_schema('shop', 'lone_${suffix}')`)).rejects.toMatchObject({
          code: "SX403",
          message: expect.stringMatching(new RegExp(`cannot grant on schema lone_${suffix}, owned by ${DBT}`)),
        });
      } finally {
        await c.query("reset role");
        c.release();
      }
      const { rows } = await db.admin.query("select has_schema_privilege('sextant_t_shop', $1, 'usage') as u", [`lone_${suffix}`]);
      expect(rows[0].u).toBe(false);
    } finally {
      await db.admin.query(`drop schema lone_${suffix}; drop role ${role}`);
    }
  });
});
