import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { asRole, createToken, withTx } from "./helpers/db.ts";
import { useTestServer } from "./helpers/setup.ts";
import { callOk, callRows, connectHttp, textOf } from "./helpers/mcpClient.ts";

const { db, server } = useTestServer();
let demo: Client;
let acme: Client;

beforeAll(async () => {
  demo = (await connectHttp(server.url, await createToken(db, "demo", "cat-demo"))).client;
  acme = (await connectHttp(server.url, await createToken(db, "acme", "cat-acme"))).client;
});
afterAll(async () => {
  await demo?.close();
  await acme?.close();
});

const text = textOf;

describe("catalog tools through MCP", () => {
  test("list_databases names this database", async () => {
    const { rows } = (await callOk(demo, "list_databases")) as { rows: { database_name: string; kind: string }[] };
    expect(rows[0]).toMatchObject({ database_name: db.name, kind: "postgresql" });
  });

  test("list_tables lists the tenant's tables with comments, estimates and size, paged", async () => {
    const { rows } = (await callOk(demo, "list_tables", { schema: "shop" })) as { rows: Record<string, unknown>[] };
    expect(rows.map((r) => r.table_name)).toEqual(["customers", "monthly_revenue", "order_items", "orders", "products"]);
    expect(rows[0]).toMatchObject({ kind: "table", estimated_rows: 1500, description: expect.stringContaining("account") });
    expect(Number(rows[0]!.estimated_bytes)).toBeGreaterThan(0);
    const page2 = (await callOk(demo, "list_tables", { schema: "shop", max_results: 2, page_offset: 2 })) as { rows: { table_name: string }[] };
    expect(page2.rows.map((r) => r.table_name)).toEqual(["order_items", "orders"]);
  });

  test("list_tables of one schema finds every kind of relation, also one moved into it later", async () => {
    // One schema's relations are found through pg_depend (each depends on its schema), not pg_class.
    await db.admin.query(`set role sextant_owner;
      create materialized view acme_sales.kinds_mv as select 1 as x;
      create table acme_sales.kinds_part (id int) partition by range (id);
      create table acme_sales.kinds_part_1 partition of acme_sales.kinds_part for values from (0) to (10);
      create table shop.kinds_moved (id int);
      alter table shop.kinds_moved set schema acme_sales;
      grant select on acme_sales.kinds_mv, acme_sales.kinds_part, acme_sales.kinds_moved to sextant_t_acme; reset role;`);
    try {
      const { rows } = (await callOk(acme, "list_tables", { schema: "acme_sales", max_results: 1000 })) as { rows: { table_name: string; kind: string }[] };
      const kinds = Object.fromEntries(rows.filter((r) => r.table_name.startsWith("kinds_")).map((r) => [r.table_name, r.kind]));
      expect(kinds).toEqual({ kinds_moved: "table", kinds_mv: "materialized view", kinds_part: "partitioned table" });
      const shop = (await callOk(demo, "list_tables", { schema: "shop" })) as { rows: { table_name: string }[] };
      expect(shop.rows.map((r) => r.table_name)).not.toContain("kinds_moved");
    } finally {
      await db.admin.query("set role sextant_owner; drop materialized view acme_sales.kinds_mv; drop table acme_sales.kinds_part, acme_sales.kinds_moved; reset role;");
    }
  });

  test("list_tables refuses another tenant's schema and bad paging", async () => {
    const other = await acme.callTool({ name: "list_tables", arguments: { schema: "shop" } });
    expect(other.isError).toBe(true);
    expect(text(other)).toMatch(/^error SX404: schema shop does not exist or is not readable/);
    const bad = await demo.callTool({ name: "list_tables", arguments: { max_results: 5000 } });
    expect(text(bad)).toMatch(/SX400: max_results must be between 1 and 1000/);
  });

  test("describe_table gives columns, keys both ways, indexes and constraints", async () => {
    const r = await demo.callTool({ name: "describe_table", arguments: { table: "orders" } });
    const d = r.structuredContent as Record<string, any>;
    expect(d).toMatchObject({ schema_name: "shop", table_name: "orders", kind: "table", estimated_rows: 4000, primary_key: ["id"] });
    expect(d.columns.map((c: { name: string }) => c.name)).toEqual(["id", "customer_id", "status", "ordered_at", "shipped_at"]);
    expect(d.columns[2]).toMatchObject({ name: "status", type: "text", nullable: false, description: expect.stringContaining("Lifecycle") });
    expect(d.foreign_keys).toEqual([expect.objectContaining({ columns: ["customer_id"], references: "shop.customers", referenced_columns: ["id"] })]);
    expect(d.referenced_by).toEqual([expect.objectContaining({ table: "shop.order_items", columns: ["order_id"] })]);
    expect(d.indexes.map((i: { name: string }) => i.name)).toEqual(expect.arrayContaining(["orders_pkey", "orders_customer_idx"]));
    expect(d.constraints).toEqual([expect.objectContaining({ type: "check", definition: expect.stringContaining("status") })]);
    expect(text(r)).toContain("references: (customer_id) -> shop.customers(id)");
  });

  test("describe_table accepts schema.table, flags sensitive columns, and says when a table is unknown", async () => {
    const r = (await callOk(demo, "describe_table", { table: "shop.customers" })) as { columns: { name: string; sensitive?: boolean }[] };
    expect(r.columns.find((c) => c.name === "email")?.sensitive).toBe(true);
    const missing = await demo.callTool({ name: "describe_table", arguments: { table: "nosuch" } });
    expect(text(missing)).toMatch(/SX404: table nosuch does not exist or is not readable by your tenant\nhint: Call list_tables/);
    const crossing = await acme.callTool({ name: "describe_table", arguments: { table: "shop.orders" } });
    expect(text(crossing)).toMatch(/SX404/);
  });

  test("get_metadata is a compact dictionary with joins and samples, never sampling sensitive columns", async () => {
    const r = await demo.callTool({ name: "get_metadata", arguments: { schema: "shop" } });
    const d = r.structuredContent as { tables: { table: string; columns: { name: string; samples?: unknown[]; sensitive?: boolean }[] }[]; join_paths: unknown[] };
    expect(d.tables.map((t) => t.table)).toContain("shop.orders");
    expect(d.join_paths).toEqual(expect.arrayContaining([{ from: "shop.orders(customer_id)", to: "shop.customers(id)" }]));
    const customers = d.tables.find((t) => t.table === "shop.customers")!;
    const email = customers.columns.find((c) => c.name === "email")!;
    expect(email.sensitive).toBe(true);
    expect(email.samples).toBeUndefined();
    expect(customers.columns.find((c) => c.name === "country")!.samples!.length).toBeGreaterThan(0);
    expect(text(r)).toContain("joins:\n");
    expect(text(r)).not.toContain("@example.com");
  });

  test("sample_table masks sensitive columns and caps n", async () => {
    const r = (await callRows(demo, "sample_table", { table: "customers", n: 3 })) as { rows: Record<string, unknown>[]; row_count: number };
    expect(r.row_count).toBe(3);
    expect(r.rows.every((row) => row.email === "[masked]")).toBe(true);
    expect(r.rows[0]!.full_name).toEqual(expect.any(String));
    const bad = await demo.callTool({ name: "sample_table", arguments: { table: "customers", n: 0 } });
    expect(text(bad)).toMatch(/SX400: n must be between 1 and 1000/);
  });

  test("each sensitive pattern is matched on its own: a backreference masks, an embedded option works", async () => {
    // Joined into one regex, \1 pointed at the wrong group (the column was shown) and (?i) was a syntax error.
    // 30 more patterns that match nothing: more than the 32 compiled regexes PostgreSQL caches.
    const original = (await db.admin.query("select sensitive_column_patterns as p from sextant.tenants where slug = 'demo'")).rows[0].p;
    await db.admin.query(`set role sextant_owner;
      create table shop.sens_probe (id int primary key, abab text, abcd text);
      insert into shop.sens_probe select g, 'secret-1', 'plain-1' from generate_series(1, 3) as g;
      analyze shop.sens_probe; -- statistics: get_metadata's samples of the columns it may show
      grant select on shop.sens_probe to sextant_t_demo; reset role;
      update sextant.tenants set sensitive_column_patterns = sensitive_column_patterns
        || array(select '^zz_filler_' || g || '$' from generate_series(1, 30) as g) || array['^(ab)\\1$', '(?i)^FULL_NAME$'] where slug = 'demo';`);
    try {
      const s = (await callRows(demo, "sample_table", { table: "shop.sens_probe", n: 1 })) as { rows: Record<string, unknown>[] };
      expect(s.rows[0]).toMatchObject({ abab: "[masked]", abcd: "plain-1" });
      const c = (await callRows(demo, "sample_table", { table: "customers", n: 1 })) as { rows: Record<string, unknown>[] };
      expect(c.rows[0]).toMatchObject({ full_name: "[masked]", email: "[masked]" });
      const d = (await callOk(demo, "describe_table", { table: "shop.sens_probe" })) as { columns: { name: string; sensitive?: boolean }[] };
      expect(d.columns.filter((col) => col.sensitive).map((col) => col.name)).toEqual(["abab"]);
      const m = await demo.callTool({ name: "get_metadata", arguments: { schema: "shop" } });
      const meta = m.structuredContent as { tables: { table: string; columns: { name: string; sensitive?: boolean; samples?: unknown[] }[] }[] };
      const probe = meta.tables.find((t) => t.table === "shop.sens_probe")!;
      expect(probe.columns.find((col) => col.name === "abab")).toMatchObject({ sensitive: true });
      expect(probe.columns.find((col) => col.name === "abcd")?.sensitive).not.toBe(true);
      expect(probe.columns.find((col) => col.name === "abcd")?.samples).toEqual(["plain-1"]);
      expect(probe.columns.find((col) => col.name === "abab")?.samples).toBeUndefined();
      expect(text(m)).not.toContain("secret-1");
    } finally {
      await db.admin.query("update sextant.tenants set sensitive_column_patterns = $1 where slug = 'demo'", [original]);
      await db.admin.query("set role sextant_owner; drop table shop.sens_probe; reset role;");
    }
  });

  test("a tenant's patterns joined into one regex match exactly the names each matches on its own", async () => {
    const names = ["password", "PassWD", "user_email", "email", "e_mail", "ssn", "lessons", "zip_123", "card_no", "cardinal",
      "token", "tokens", "xx", "x", "yz", "a", "b", "ab", "Übername", "über", "aa", "abab", "full_name", "FULL_NAME", ""];
    const alone = `array(select distinct n from unnest($1::text[]) as n where exists (select from unnest($2::text[]) as p where n ~* p) order by 1)`;
    const joined = `array(select unnest(sextant_exec.names_matching($1, $2)) order by 1)`;
    for (const patterns of [
      ["pass(word|wd)?", "^e_?mail$", "[[:digit:]]{3}", "a|b$", "^(x|y)z", "card.*no", "\\mssn\\M", "über", "(?:tok)en$", "x{2,}", ""],
      ["^(ab)\\1$", "(?i)^FULL_NAME$", "^a"], // a backreference and an embedded option: pattern by pattern
      ["***=xx", "(?:e)mail"], // a director: pattern by pattern
      ["^zz$"], [],
      // Bounds are copies of their operand: each of these compiles alone (~0.1 s), twelve joined
      // are "too complex" (or worse, a gigabyte allocation): pattern by pattern.
      [...Array(12).fill("(a|b){1,255}".repeat(40)), "ssn"],
      // A null element matches nothing (array_to_string would drop it, and {NULL} joined is "(?:)").
      [null], [null, "ssn"],
    ]) {
      const { rows } = await db.admin.query(`select ${joined} as joined, ${alone} as alone`, [names, patterns]);
      expect(rows[0].joined, JSON.stringify(patterns)).toEqual(rows[0].alone);
    }
    const first = await db.admin.query(`select ${joined} as j`, [names, ["pass(word|wd)?", "^e_?mail$", "\\mssn\\M"]]);
    expect([...first.rows[0].j].sort()).toEqual(["PassWD", "e_mail", "email", "password", "ssn"].sort());
    // Joined, "a)|(b" would compile ("(?:a)|(b)"): every write is held to patterns that compile alone (migration 000121).
    await expect(db.admin.query("update sextant.tenants set sensitive_column_patterns = array['email', 'a)|(b'] where slug = 'acme'"))
      .rejects.toMatchObject({ code: "23514" });
  });

  test("list_functions shows callable functions in the tenant's schemas only", async () => {
    await db.admin.query(`set role sextant_owner; create or replace function shop.vat(amount numeric) returns numeric language sql immutable as 'select amount * 0.2';
      comment on function shop.vat(numeric) is 'VAT at 20 percent'; reset role;`);
    const { rows } = (await callOk(demo, "list_functions")) as { rows: Record<string, unknown>[] };
    expect(rows).toEqual([expect.objectContaining({ schema_name: "shop", function_name: "vat", arguments: "amount numeric", description: "VAT at 20 percent" })]);
    const acmeRows = (await callOk(acme, "list_functions")) as { rows: unknown[] };
    expect(acmeRows.rows).toEqual([]);
  });
});

describe("catalog from psql", () => {
  test("the same functions answer an analyst's role directly", () =>
    withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      const { rows } = await client.query("select table_name, estimated_rows from sextant.list_tables()");
      expect(rows.map((r) => r.table_name)).toEqual(["orders"]);
    }));
});

describe("a large catalog", () => {
  test("list_tables and describe_table stay within the tenant on 300 tables", async () => {
    await db.admin.query(`set role sextant_owner;
      do $$ begin for i in 1..300 loop
        execute format('create table acme_sales.t%s (id int primary key, v text)', i);
        execute format('comment on table acme_sales.t%s is %L', i, 'generated ' || i);
      end loop; end $$;
      grant select on all tables in schema acme_sales to sextant_t_acme; reset role;`);
    const page = (await callOk(acme, "list_tables", { schema: "acme_sales", max_results: 1000 })) as { rows: unknown[] };
    expect(page.rows).toHaveLength(301);
    const none = (await callOk(demo, "list_tables", { max_results: 1000 })) as { rows: { schema_name: string }[] };
    expect(none.rows.every((r) => r.schema_name === "shop")).toBe(true);
  });
});

describe("allow and deny lists are privileges", () => {
  test("an excluded table disappears from every tool and cannot be queried", async () => {
    await db.admin.query(`set role sextant_owner; create table shop.internal_costs (id int, cost numeric); reset role;
      select sextant_private.apply_table_filters('demo');`);
    const before = (await callOk(demo, "list_tables", { schema: "shop" })) as { rows: { table_name: string }[] };
    expect(before.rows.map((r) => r.table_name)).toContain("internal_costs");
    await db.admin.query("update sextant.tenants set excluded_tables = array['shop.internal%'] where slug = 'demo'");
    await db.admin.query("select sextant_private.apply_table_filters('demo')");
    const after = (await callOk(demo, "list_tables", { schema: "shop" })) as { rows: { table_name: string }[] };
    expect(after.rows.map((r) => r.table_name)).not.toContain("internal_costs");
    expect(textOf(await demo.callTool({ name: "query", arguments: { sql: "select * from shop.internal_costs" } }))).toMatch(/^error SX404/);
    expect(textOf(await demo.callTool({ name: "describe_table", arguments: { table: "shop.internal_costs" } }))).toMatch(/^error SX404/);
    // an allow list keeps only what it names
    await db.admin.query("update sextant.tenants set excluded_tables = '{}', allowed_tables = array['shop.orders', 'shop.customers'] where slug = 'demo'");
    await db.admin.query("select sextant_private.apply_table_filters('demo')");
    const allowed = (await callOk(demo, "list_tables", { schema: "shop" })) as { rows: { table_name: string }[] };
    expect(allowed.rows.map((r) => r.table_name)).toEqual(["customers", "orders"]);
    await db.admin.query("update sextant.tenants set allowed_tables = '{}' where slug = 'demo'; select sextant_private.apply_table_filters('demo')");
  });
});
