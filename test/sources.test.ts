import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { addSource, listSources, refreshDueSources, refreshSource, removeSource } from "../src/sources/index.ts";
import { runCli } from "./helpers/cli.ts";
import { asRole, createToken, withTx } from "./helpers/db.ts";
import { gql } from "./helpers/graphql.ts";
import { callOk, callRows, connectHttp, textOf } from "./helpers/mcpClient.ts";
import { useSourceServer } from "./helpers/remotePg.ts";

// A second, real PostgreSQL plays the remote server; its role may write, Sextant must not.
const PASSWORD = "Wr1ter-Secret-Passw0rd-7781";
let allow: string[];
const { remote, db, server, withAdmin } = useSourceServer(
  `
    create role sx_writer login password '${PASSWORD}';
    create schema analytics;
    create table analytics.orders (id int primary key, customer text not null, amount numeric not null);
    comment on table analytics.orders is 'Warehouse orders';
    comment on column analytics.orders.amount is 'Order amount in cents';
    insert into analytics.orders select i, 'customer ' || (i % 50), i from generate_series(1, 1000) as i;
    create table analytics.customers (id int primary key, name text not null);
    insert into analytics.customers select i, 'customer ' || i from generate_series(0, 49) as i;
    -- What the remote session itself says about its transaction.
    create view analytics.session as
      select current_setting('transaction_read_only') as read_only, current_setting('statement_timeout') as statement_timeout;
    create schema secret_stuff;
    create table secret_stuff.keys (k text);
    -- The remote role may write everything: Sextant's read-only guarantees must not rest on it.
    grant all on schema analytics, secret_stuff to sx_writer;
    grant all on all tables in schema analytics, secret_stuff to sx_writer;
    analyze analytics.orders;`,
  async ({ remote, withAdmin }) => {
    allow = [`127.0.0.1:${remote.port}`];
    await withAdmin((c) => addSource(c, allow, { tenant: "acme", name: "warehouse", url: remote.url("sx_writer", PASSWORD), schemas: ["analytics"] }));
  },
);
let acme: Client;
let globex: Client;
let acmeToken: string;
let globexToken: string;

const remoteUrl = () => remote.url("sx_writer", PASSWORD);
const onRemote = (sql: string) => remote.sql(sql);

beforeAll(async () => {
  acmeToken = await createToken(db, "acme", "src-acme", "admin");
  globexToken = await createToken(db, "globex", "src-globex", "admin");
  acme = (await connectHttp(server.url, acmeToken)).client;
  globex = (await connectHttp(server.url, globexToken)).client;
});

afterAll(async () => {
  await acme?.close();
  await globex?.close();
});

describe("a source's tables through MCP", () => {
  test("list_databases shows the source with its server version, status, last refresh and table count", async () => {
    const { rows } = (await callOk(acme, "list_databases")) as { rows: Record<string, unknown>[] };
    const src = rows.find((r) => r.database_name === "warehouse");
    expect(src).toMatchObject({ kind: "postgresql source (postgres_fdw)", server_version: expect.stringMatching(/^18/), status: "ok", table_count: 3, schemas: ["warehouse_analytics"] });
    expect(src!.last_refreshed_at).toBeTruthy();
    expect(JSON.stringify(rows)).not.toContain(PASSWORD);
  });

  test("list_tables, describe_table, sample_table and query read the remote tables", async () => {
    const { rows } = (await callOk(acme, "list_tables", { schema: "warehouse_analytics" })) as { rows: { table_name: string; description: string; estimated_rows: number | null }[] };
    expect(rows.map((r) => r.table_name)).toEqual(["customers", "orders", "session"]);
    expect(rows[1]!.estimated_rows).toBe(1000); // the remote estimate, not the local view's
    // The remote catalog's comments and keys, read at refresh time.
    expect(rows[1]!.description).toBe("Warehouse orders\n (analytics.orders of source warehouse; primary key id)");
    const d = (await callOk(acme, "describe_table", { table: "warehouse_analytics.orders" })) as { columns: { name: string; type: string; description: string | null }[] };
    expect(d.columns.map((c) => [c.name, c.type])).toEqual([["id", "integer"], ["customer", "text"], ["amount", "numeric"]]);
    expect(d.columns[2]!.description).toBe("Order amount in cents");
    // A view here; its keys, indexes, estimate and column statistics come from the remote catalog.
    const full = d as unknown as { primary_key: string[]; estimated_rows: number; indexes: unknown[]; columns: { primary_key?: boolean; statistics?: Record<string, number> }[] };
    expect(full).toMatchObject({ primary_key: ["id"], estimated_rows: 1000 });
    expect(full.indexes).toEqual([{ name: "orders_pkey", unique: true, primary: true, columns: ["id"] }]);
    expect(full.columns[0]).toMatchObject({ primary_key: true, statistics: { null_fraction: 0, distinct: -1 } });
    expect(full.columns[1]!.statistics).toMatchObject({ distinct: 50 });
    expect((await db.admin.query("select primary_key, estimated_rows::int as estimated_rows from sextant.source_tables where table_name = 'orders'")).rows)
      .toEqual([{ primary_key: ["id"], estimated_rows: 1000 }]);
    const sample = (await callOk(acme, "sample_table", { table: "orders", schema: "warehouse_analytics", n: 5 })) as { row_count: number };
    expect(sample.row_count).toBe(5);
    const q = (await callRows(acme, "query", { sql: "select count(*) as n, sum(amount) as total from warehouse_analytics.orders o join warehouse_analytics.customers c on c.name = o.customer where o.id <= 100" })) as { rows: Record<string, unknown>[] };
    expect(q.rows).toEqual([{ n: 100, total: 5050 }]);
  });

  test("filters and aggregates are pushed down to the remote server (Remote SQL in explain_query)", async () => {
    const r = (await callOk(acme, "explain_query", { sql: "select customer, count(*) from warehouse_analytics.orders where amount > 900 group by customer" })) as { plan: unknown };
    const plan = JSON.stringify(r.plan);
    expect(plan).toContain("Remote SQL");
    expect(plan).toMatch(/SELECT customer, count\(\*\) FROM analytics\.orders WHERE \(\(amount > 900/);
    expect(plan).toMatch(/GROUP BY 1/);
  });

  test("the remote session is read-only and has a statement timeout, whatever the remote role may do", async () => {
    const q = (await callRows(acme, "query", { sql: "select * from warehouse_analytics.session" })) as { rows: Record<string, unknown>[] };
    expect(q.rows).toEqual([{ read_only: "on", statement_timeout: "15s" }]);
  });
});

describe("get_metadata on a source's tables", () => {
  test("shows the remote comments, keys, foreign keys and row estimates, as describe_table does", async () => {
    await onRemote(`
      create table analytics.order_lines (id int primary key, order_id int not null references analytics.orders (id), qty int);
      comment on table analytics.order_lines is 'Lines of an order';
      insert into analytics.order_lines select i, i, 1 from generate_series(1, 20) as i;
      grant all on analytics.order_lines to sx_writer;
      analyze analytics.order_lines;`);
    await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
    try {
      const r = await acme.callTool({ name: "get_metadata", arguments: { schema: "warehouse_analytics" } });
      type Table = { table: string; kind?: string; rows?: number; source?: string; description?: string; columns: { name: string; pk?: boolean; description?: string }[] };
      const d = r.structuredContent as { tables: Table[]; join_paths: unknown[] };
      const orders = d.tables.find((t) => t.table === "warehouse_analytics.orders")!;
      expect(orders).toMatchObject({ kind: "view", rows: 1000, source: "warehouse", description: "Warehouse orders\n (analytics.orders of source warehouse; primary key id)" });
      expect(orders.columns.find((c) => c.name === "id")).toMatchObject({ pk: true });
      expect(orders.columns.find((c) => c.name === "customer")!.pk).toBeUndefined();
      expect(orders.columns.find((c) => c.name === "amount")).toMatchObject({ description: "Order amount in cents" });
      expect(d.tables.find((t) => t.table === "warehouse_analytics.order_lines")).toMatchObject({ rows: 20, source: "warehouse", description: expect.stringMatching(/^Lines of an order/) });
      expect(d.join_paths).toContainEqual({ from: "warehouse_analytics.order_lines(order_id)", to: "warehouse_analytics.orders(id)" });
      expect(textOf(r)).toMatch(/warehouse_analytics\.orders \(view\) ~1000 rows/);
      expect(textOf(r)).toMatch(/warehouse_analytics\.order_lines\(order_id\) -> warehouse_analytics\.orders\(id\)/);
      // Another tenant learns nothing of it.
      const g = await globex.callTool({ name: "get_metadata", arguments: { schema: "warehouse_analytics" } });
      expect(JSON.stringify(g)).not.toMatch(/order_lines|Warehouse orders/);
    } finally {
      await onRemote("drop table analytics.order_lines");
      await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
    }
  });
});

describe("a source's tables through GraphQL and psql", () => {
  test("GraphQL's listDatabases and query show the source to its tenant only", async () => {
    const q = `{ listDatabases { nodes { databaseName status tableCount serverVersion } }
                 query(sql: "select count(*)::int as n from warehouse_analytics.orders") { rows } }`;
    const a = await gql(server.url, acmeToken, q);
    expect(a.body.errors).toBeUndefined();
    expect(a.body.data.listDatabases.nodes).toContainEqual({ databaseName: "warehouse", status: "ok", tableCount: 3, serverVersion: expect.stringMatching(/^18/) });
    expect(a.body.data.query.rows).toEqual([{ n: 1000 }]);
    const g = await gql(server.url, globexToken, `{ listDatabases { nodes { databaseName } } }`);
    expect(g.body.data.listDatabases.nodes.map((n: { databaseName: string }) => n.databaseName)).not.toContain("warehouse");
    expect(JSON.stringify(a.body)).not.toContain(PASSWORD);
  });

  test("an analyst's own psql login reads the source but not the mapping", async () => {
    const login = `src_ann_${Date.now()}`;
    const password = "analyst-password-0123456789";
    await db.admin.query("select sextant_private.create_analyst_login('acme', $1, $2)", [login, password]);
    const url = new URL(db.adminUrl);
    url.username = login;
    url.password = password;
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    try {
      expect((await c.query("select count(*)::int as n from warehouse_analytics.orders where amount > 500")).rows).toEqual([{ n: 500 }]);
      await expect(c.query("select * from pg_user_mappings")).rejects.toMatchObject({ code: "42501" });
      await expect(c.query("select srvoptions from pg_foreign_server")).rejects.toMatchObject({ code: "42501" });
      await expect(c.query("begin read write; insert into warehouse_analytics.orders values (9999, 'x', 1)")).rejects.toMatchObject({ code: "42501" });
    } finally {
      await c.end();
      await db.admin.query(`drop owned by ${login}; drop role ${login}`);
    }
  });
});

describe("tenant boundaries", () => {
  test("another tenant does not see the source in list_databases and cannot query its tables", async () => {
    const { rows } = (await callOk(globex, "list_databases")) as { rows: { database_name: string }[] };
    expect(rows.map((r) => r.database_name)).not.toContain("warehouse");
    const r = await globex.callTool({ name: "query", arguments: { sql: "select * from warehouse_analytics.orders" } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/SX404/);
    const t = await globex.callTool({ name: "list_tables", arguments: { schema: "warehouse_analytics" } });
    expect(textOf(t)).toMatch(/SX404/);
  });

  test("no tenant role, the source's own included, can read a mapping, a server's options or the hidden foreign tables", () =>
    withTx(db.auth, async (c) => {
      for (const role of ["sextant_t_acme", "sextant_t_globex"]) {
        await c.query("savepoint s");
        await asRole(c, role);
        for (const sql of [
          "select * from pg_catalog.pg_user_mappings",
          "select srvoptions from pg_catalog.pg_foreign_server",
          "select * from pg_catalog.pg_user_mapping",
        ]) {
          await c.query("savepoint t");
          await expect(c.query(sql), `${role}: ${sql}`).rejects.toMatchObject({ code: "42501" });
          await c.query("rollback to savepoint t");
        }
        // The names of servers (not their options) stay readable: they say nothing secret.
        await c.query("rollback to savepoint s");
      }
    }));

  test("a tenant's raw SQL reads its source through the views; the hidden schema and the server refuse it", () =>
    withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme");
      expect((await c.query("select count(*)::int as n from warehouse_analytics.orders")).rows).toEqual([{ n: 1000 }]);
      const hidden = (await db.admin.query("select local_schema, (select n.nspname from pg_namespace n join pg_class k on k.relnamespace = n.oid join pg_foreign_table f on f.ftrelid = k.oid where k.relname = 'orders' limit 1) as h from sextant.source_tables limit 1")).rows[0].h;
      for (const [sql, code] of [
        [`select * from ${hidden}.orders`, "42501"],
        ["create foreign table public.x (k text) server sextant_src__acme__warehouse options (schema_name 'secret_stuff', table_name 'keys')", "42501"],
        ["create user mapping for current_user server sextant_src__acme__warehouse options (user 'sx_writer', password 'x')", "42501"],
        ["import foreign schema secret_stuff from server sextant_src__acme__warehouse into warehouse_analytics", "42501"],
      ] as const) {
        await c.query("savepoint t");
        await expect(c.query(sql), sql).rejects.toMatchObject({ code });
        await c.query("rollback to savepoint t");
      }
    }));

  test("another tenant cannot use or name the server, even by its name", () =>
    withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_globex");
      for (const sql of [
        "select count(*) from warehouse_analytics.orders",
        "create user mapping for current_user server sextant_src__acme__warehouse options (user 'sx_writer', password 'x')",
        "import foreign schema analytics from server sextant_src__acme__warehouse into globex_ops",
      ]) {
        await c.query("savepoint t");
        await expect(c.query(sql), sql).rejects.toMatchObject({ code: "42501" });
        await c.query("rollback to savepoint t");
      }
      expect((await c.query("select count(*)::int as n from sextant.sources")).rows).toEqual([{ n: 0 }]);
      expect((await c.query("select count(*)::int as n from sextant.source_tables")).rows).toEqual([{ n: 0 }]);
    }));

  test("the query tool refuses reading the mapping and server catalogs", async () => {
    for (const sql of ["select * from pg_user_mappings", "select srvoptions from pg_foreign_server"]) {
      const r = await acme.callTool({ name: "query", arguments: { sql } });
      expect(r.isError, sql).toBe(true);
      expect(textOf(r)).not.toContain(PASSWORD);
    }
  });
});

describe("writes", () => {
  test("a remote role with write rights still cannot write through Sextant", async () => {
    const r = await acme.callTool({ name: "query", arguments: { sql: "insert into warehouse_analytics.orders values (5000, 'x', 1)" } });
    expect(r.isError).toBe(true);
    // Raw SQL as the tenant in a read-write transaction: no privilege to write the view.
    await withTx(db.auth, async (c) => {
      await c.query("set transaction read write");
      await asRole(c, "sextant_t_acme__admin");
      await expect(c.query("insert into warehouse_analytics.orders values (5001, 'x', 1)")).rejects.toMatchObject({ code: "42501" });
    });
    // Even a superuser writing the foreign table is refused by postgres_fdw (updatable false)...
    const hidden = (await db.admin.query("select n.nspname from pg_namespace n join pg_class k on k.relnamespace = n.oid where k.relname = 'orders' and k.relkind = 'f'")).rows[0].nspname;
    await expect(db.admin.query(`insert into ${hidden}.orders values (5002, 'x', 1)`)).rejects.toThrow(/does not allow inserts/);
    await expect(db.admin.query(`truncate ${hidden}.orders`)).rejects.toThrow(/does not allow truncates/);
    // ... and when that option is turned on, by the read-only remote session.
    await withAdmin(async (c) => {
      await c.query("begin");
      try {
        await c.query("alter server sextant_src__acme__warehouse options (set updatable 'true')");
        await c.query(`set local role sextant_t_acme__remote`);
        await expect(c.query(`update ${hidden}.orders set amount = 0`)).rejects.toThrow(/read-only transaction/);
      } finally {
        await c.query("rollback");
      }
    });
    expect(await onRemote("select count(*)::int as n, sum(amount)::int as s from analytics.orders")).toEqual([{ n: 1000, s: 500500 }]);
  });
});

describe("refresh and failures", () => {
  test("a refresh makes the remote session follow the tenant's statement timeout as it is now", async () => {
    await db.admin.query("update sextant.tenants set statement_timeout_ms = 20000 where slug = 'acme'");
    try {
      await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
      const q = (await callRows(acme, "query", { sql: "select statement_timeout from warehouse_analytics.session" })) as { rows: Record<string, unknown>[] };
      expect(q.rows).toEqual([{ statement_timeout: "20s" }]);
      expect((await db.admin.query("select pg_get_userbyid(srvowner) as owner from pg_foreign_server where srvname = 'sextant_src__acme__warehouse'")).rows)
        .toEqual([{ owner: "sextant_owner" }]);
    } finally {
      await db.admin.query("update sextant.tenants set statement_timeout_ms = 15000 where slug = 'acme'");
      await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
    }
    const q = (await callRows(acme, "query", { sql: "select statement_timeout from warehouse_analytics.session" })) as { rows: Record<string, unknown>[] };
    expect(q.rows).toEqual([{ statement_timeout: "15s" }]);
  });

  test("a refresh follows new, changed and dropped remote tables", async () => {
    await onRemote(`
      create table analytics.shipments (id int primary key, order_id int not null);
      grant all on analytics.shipments to sx_writer;
      drop table analytics.customers;
      alter table analytics.orders add column region text default 'eu';`);
    const row = await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
    expect(row).toMatchObject({ status: "ok", table_count: 3, last_error: null });
    const { rows } = (await callOk(acme, "list_tables", { schema: "warehouse_analytics" })) as { rows: { table_name: string }[] };
    expect(rows.map((r) => r.table_name)).toEqual(["orders", "session", "shipments"]);
    const d = (await callOk(acme, "describe_table", { table: "warehouse_analytics.orders" })) as { columns: { name: string }[] };
    expect(d.columns.map((c) => c.name)).toContain("region");
    expect((await db.admin.query("select table_name from sextant.source_tables order by 1")).rows.map((r) => r.table_name)).toEqual(["orders", "session", "shipments"]);
  });

  test("a remote server that is down: the tool names the source, local tables keep working, the next refresh recovers", async () => {
    await remote.stop();
    try {
      const r = await acme.callTool({ name: "query", arguments: { sql: "select count(*) from warehouse_analytics.orders" } });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/SX502: source warehouse is unreachable/);
      expect(textOf(r)).not.toContain(PASSWORD);
      const local = (await callRows(acme, "query", { sql: "select count(*)::int as n from acme_sales.orders" })) as { rows: unknown[] };
      expect(local.rows).toEqual([{ n: 50 }]);
      const failed = await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
      expect(failed.status).toBe("failed");
      expect(failed.last_error).toMatch(/could not connect/);
      expect(JSON.stringify(failed)).not.toContain(PASSWORD);
      // The tables of the last good refresh stay.
      const { rows } = (await callOk(acme, "list_tables", { schema: "warehouse_analytics" })) as { rows: unknown[] };
      expect(rows).toHaveLength(3);
      const dbs = (await callOk(acme, "list_databases")) as { rows: Record<string, unknown>[] };
      expect(dbs.rows.find((d) => d.database_name === "warehouse")).toMatchObject({ status: "failed" });
    } finally {
      await remote.start();
    }
    const back = (await callRows(acme, "query", { sql: "select count(*)::int as n from warehouse_analytics.orders" })) as { rows: unknown[] };
    expect(back.rows).toEqual([{ n: 1000 }]);
    expect((await withAdmin((c) => refreshSource(c, "acme", "warehouse"))).status).toBe("ok");
    // Remote connections are cached per local session and mapping: no more than the local pools hold.
    const open = await remote.sql<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = 'sextant'");
    expect(open[0]!.n).toBeLessThanOrEqual(8 + 4);
  });

  test("a remote server lost in the middle of a query: the tool names the source, the next query reconnects", async () => {
    await remote.sql("create view analytics.slow as select pg_sleep(2)::text as slept; grant select on analytics.slow to sx_writer");
    await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
    try {
      const pending = acme.callTool({ name: "query", arguments: { sql: "select * from warehouse_analytics.slow" } });
      // Wait until the remote query runs, then end its session there.
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const running = await remote.sql<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = 'sextant' and state = 'active' and (query like 'FETCH %' or query like '%analytics.slow%')");
        if (running[0]!.n > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // postgres_fdw reads through a cursor: the sleeping statement is its FETCH.
      await remote.sql("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'sextant' and state = 'active' and (query like 'FETCH %' or query like '%analytics.slow%')");
      const r = await pending;
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/SX502: source warehouse: its PostgreSQL server closed the connection during the query/);
      const again = (await callRows(acme, "query", { sql: "select count(*)::int as n from warehouse_analytics.orders" })) as { rows: unknown[] };
      expect(again.rows).toEqual([{ n: 1000 }]);
    } finally {
      await remote.sql("drop view analytics.slow");
      await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
    }
  });
});

describe("a source's statement timeout", () => {
  test("the remote server canceling its part of a query: the tool names the source (SX504), other tables keep working", async () => {
    await remote.sql("create view analytics.slow as select pg_sleep(3)::text as slept; grant select on analytics.slow to sx_writer");
    await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
    // A remote timeout shorter than the local one (as when the tenant's was raised after the
    // last refresh): the remote ends the query first. Changed options close cached connections.
    await db.admin.query("alter server sextant_src__acme__warehouse options (set options '-c default_transaction_read_only=on -c statement_timeout=300')");
    try {
      const r = await acme.callTool({ name: "query", arguments: { sql: "select * from warehouse_analytics.slow" } });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/SX504: source warehouse canceled the query: canceling statement due to statement timeout/);
      expect(textOf(r)).not.toContain(PASSWORD);
      // A data error in SQL pushed down to the remote stays the caller's (no source blamed).
      const zero = await acme.callTool({ name: "query", arguments: { sql: "select count(*) from warehouse_analytics.orders where 1 / (id - id) = 0" } });
      expect(textOf(zero)).toMatch(/^error 22012: [\s\S]*division by zero/);
      expect(textOf(zero)).not.toMatch(/SX50|source warehouse/);
      const local = (await callRows(acme, "query", { sql: "select count(*)::int as n from acme_sales.orders" })) as { rows: unknown[] };
      expect(local.rows).toEqual([{ n: 50 }]);
      const quick = (await callRows(acme, "query", { sql: "select count(*)::int as n from warehouse_analytics.orders" })) as { rows: unknown[] };
      expect(quick.rows).toEqual([{ n: 1000 }]);
    } finally {
      await remote.sql("drop view analytics.slow");
      await withAdmin((c) => refreshSource(c, "acme", "warehouse"));
    }
    const q = (await callRows(acme, "query", { sql: "select statement_timeout from warehouse_analytics.session" })) as { rows: Record<string, unknown>[] };
    expect(q.rows).toEqual([{ statement_timeout: "15s" }]);
  });
});

describe("operators", () => {
  test("a host on a loopback or private address is refused unless the operator allows it", async () => {
    await expect(withAdmin((c) => addSource(c, [], { tenant: "acme", name: "sneaky", url: remoteUrl(), schemas: ["analytics"] })))
      .rejects.toThrow(/private or loopback/);
    expect((await db.admin.query("select count(*)::int as n from pg_foreign_server where srvname like '%sneaky%'")).rows).toEqual([{ n: 0 }]);
  });

  test("the URL may set only host, port, dbname, user, password and sslmode", async () => {
    for (const extra of ["options=-c%20default_transaction_read_only%3Doff", "hostaddr=10.0.0.1", "sslrootcert=/etc/passwd"]) {
      const err = await withAdmin((c) => addSource(c, allow, { tenant: "acme", name: "extra", url: `${remoteUrl()}?${extra}`, schemas: ["analytics"] })).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/may not set/);
      expect((err as Error).message).not.toContain(PASSWORD);
    }
  });

  test("a wrong password or a missing remote schema leaves nothing behind and never echoes the password", async () => {
    const wrong = await withAdmin((c) => addSource(c, allow, { tenant: "acme", name: "bad", url: remoteUrl().replace(PASSWORD, "not-the-password-123"), schemas: ["analytics"] })).catch((e: Error & { code?: string }) => e);
    expect(wrong).toMatchObject({ code: "SX502" });
    expect(JSON.stringify({ ...wrong, message: (wrong as Error).message })).not.toContain("not-the-password-123");
    const missing = await withAdmin((c) => addSource(c, allow, { tenant: "acme", name: "bad", url: remoteUrl(), schemas: ["nosuch"] })).catch((e: Error & { code?: string }) => e);
    expect(missing).toMatchObject({ code: "SX502" });
    expect(JSON.stringify({ ...missing, message: (missing as Error).message })).not.toContain(PASSWORD);
    expect((await db.admin.query("select count(*)::int as n from pg_foreign_server where srvname like '%bad%'")).rows).toEqual([{ n: 0 }]);
    expect((await db.admin.query("select count(*)::int as n from pg_namespace where nspname like 'bad\\_%'")).rows).toEqual([{ n: 0 }]);
  });

  test("sextant source add, list and remove from the CLI, without printing the password", async () => {
    const env = { DATABASE_URL: db.adminUrl, SEXTANT_SOURCE_URL: remoteUrl(), SEXTANT_SOURCE_ALLOW_HOSTS: allow.join(",") };
    const added = await runCli(["source", "add", "--tenant", "globex", "--name", "wh", "--schema", "analytics"], env);
    expect(added.stderr).toBe("");
    expect(added.stdout).toMatch(/^source wh added: 3 tables in wh_analytics \(PostgreSQL 18/);
    const listed = await runCli(["source", "list"], env);
    expect(listed.stdout).toContain("wh");
    expect(listed.stdout).toContain("warehouse");
    expect(added.stdout + added.stderr + listed.stdout + listed.stderr).not.toContain(PASSWORD);
    expect(JSON.stringify(await withAdmin((c) => listSources(c)))).not.toContain(PASSWORD);
    const removed = await runCli(["source", "remove", "wh", "--tenant", "globex"], env);
    expect(removed.stdout).toBe("source wh removed\n");
    expect((await db.admin.query("select count(*)::int as n from pg_foreign_server where srvname = 'sextant_src__globex__wh'")).rows).toEqual([{ n: 0 }]);
    expect((await db.admin.query("select count(*)::int as n from pg_namespace where nspname = 'wh_analytics'")).rows).toEqual([{ n: 0 }]);
    expect((await db.admin.query("select count(*)::int as n from sextant.tenant_schemas where schema_name = 'wh_analytics'")).rows).toEqual([{ n: 0 }]);
  }, 120_000);

  test("refresh-due refreshes the sources whose last refresh is older than the interval, and only those", async () => {
    await db.admin.query("update sextant.sources set last_refreshed_at = now() - interval '2 hours' where name = 'warehouse'");
    expect(await withAdmin((c) => refreshDueSources(c, "1 hour"))).toEqual({ refreshed: 1, failed: 0 });
    expect(await withAdmin((c) => refreshDueSources(c, "1 hour"))).toEqual({ refreshed: 0, failed: 0 });
  });

  test("removing a source drops its server, mapping and tables", async () => {
    await withAdmin((c) => addSource(c, allow, { tenant: "acme", name: "gone", url: remoteUrl(), schemas: ["analytics"] }));
    await withAdmin((c) => removeSource(c, "acme", "gone"));
    expect((await db.admin.query("select count(*)::int as n from pg_user_mappings where srvname = 'sextant_src__acme__gone'")).rows).toEqual([{ n: 0 }]);
    const r = await acme.callTool({ name: "query", arguments: { sql: "select * from gone_analytics.orders" } });
    expect(textOf(r)).toMatch(/SX404/);
  });
});
