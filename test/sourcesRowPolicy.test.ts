import pg from "pg";
import { beforeAll, expect, test } from "vitest";
import { asRole, withTx } from "./helpers/db.ts";
import { useTestDatabase } from "./helpers/setup.ts";

// The row policies of sextant.sources and sextant.source_tables (migration 000120): each tenant
// sees its own sources only, and sextant.current_tenant() runs once per statement (an initplan,
// as every other table's policy is written), not once per row or per view a catalog call looks at.

const db = useTestDatabase();
const VIEWS = 30;

beforeAll(async () => {
  // Two tenants' sources whose tables have the same local name (a source's tables are views
  // here); seeded as the owner, read below as the tenants' roles.
  await db.admin.query(`
    insert into sextant.sources (tenant_slug, name, server_name, host, port, dbname, remote_user, remote_schemas)
    values ('acme', 'crm', 'sx_test_acme_crm', '127.0.0.1', 5432, 'crm', 'reader', '{public}'),
           ('globex', 'crm', 'sx_test_globex_crm', '127.0.0.1', 5432, 'crm', 'reader', '{public}')`);
  for (const [tenant, schema] of [["acme", "acme_sales"], ["globex", "globex_ops"]] as const) {
    for (let i = 1; i <= VIEWS; i++) {
      await db.admin.query(`create view ${schema}.remote_${i} as select 1 as id`);
      await db.admin.query(`grant select on ${schema}.remote_${i} to sextant_t_${tenant}`);
    }
    await db.admin.query(`
      insert into sextant.source_tables (tenant_slug, source_name, remote_schema, table_name, local_schema, column_count, estimated_rows)
      select $1, 'crm', 'public', 'remote_' || i, $2, 1, $3 from generate_series(1, $4) as i`, [tenant, schema, tenant === "acme" ? 111 : 222, VIEWS]);
  }
  // Counts of PL/pgSQL calls for the measurements (new sessions of this database only).
  await db.admin.query(`alter database ${db.name} set track_functions = 'pl'`);
});

test("a tenant reads its own sources and source tables only", () =>
  withTx(db.auth, async (client) => {
    await asRole(client, "sextant_t_acme");
    const sources = await client.query("select tenant_slug, server_name from sextant.sources");
    expect(sources.rows).toEqual([{ tenant_slug: "acme", server_name: "sx_test_acme_crm" }]);
    const tables = await client.query("select distinct tenant_slug, local_schema from sextant.source_tables");
    expect(tables.rows).toEqual([{ tenant_slug: "acme", local_schema: "acme_sales" }]);
    // Another tenant's row is not there even when asked for by name.
    expect((await client.query("select count(*)::int as n from sextant.source_tables where local_schema = 'globex_ops'")).rows[0].n).toBe(0);
    // describe_table and list_tables take a source table's facts from the tenant's own row.
    const described = await client.query("select (sextant.describe_table('remote_1', 'acme_sales')).estimated_rows");
    expect(Number(described.rows[0].estimated_rows)).toBe(111);
    await asRole(client, "sextant_t_globex");
    expect((await client.query("select server_name from sextant.sources")).rows).toEqual([{ server_name: "sx_test_globex_crm" }]);
    expect((await client.query("select count(*)::int as n from sextant.source_tables where tenant_slug = 'acme'")).rows[0].n).toBe(0);
  }));

test("sextant.current_tenant() runs once per statement, however many source tables a call looks at", async () => {
  const client = new pg.Client({ connectionString: db.authUrl });
  await client.connect();
  try {
    expect((await client.query("show track_functions")).rows[0].track_functions).toBe("pl");
    /** Calls of current_tenant() while `sql` runs as acme (this transaction's own count). */
    const calls = async (sql: string) => {
      await client.query("begin");
      try {
        await asRole(client, "sextant_t_acme");
        const count = async () =>
          Number((await client.query("select coalesce(pg_stat_get_xact_function_calls('sextant.current_tenant'::regproc), 0) as n")).rows[0].n);
        const before = await count();
        // Every column read, so nothing the call computes is optimised away.
        await client.query(`select length(x::text) from (${sql}) as x`);
        return (await count()) - before;
      } finally {
        await client.query("rollback");
      }
    };
    // The plans: the tenant is an initplan's parameter, not a call in the row filter.
    await client.query("begin");
    await asRole(client, "sextant_t_acme");
    for (const table of ["sextant.sources", "sextant.source_tables"]) {
      const plan = (await client.query(`explain (verbose, costs off) select * from ${table}`)).rows.map((r) => r["QUERY PLAN"]).join("\n");
      expect(plan, plan).toMatch(/InitPlan/);
      expect(plan, plan).not.toMatch(/tenant_slug = sextant\.current_tenant\(\)/);
    }
    await client.query("rollback");
    // list_tables looks up each of the 30 views in source_tables (its row estimate); before
    // 000120 that was one call per view (32 here), now one in all.
    const listed = await calls("select * from sextant.list_tables('acme_sales')");
    expect(listed).toBeLessThanOrEqual(2);
    expect(await calls("select * from sextant.list_databases()")).toBeLessThanOrEqual(1);
    // describe_table reads a source table's facts with one call more than a plain table's
    // description (whose calls are one per row-secured table it reads: dbt, knowledge, runs).
    const plain = await calls("select sextant.describe_table('orders', 'acme_sales')");
    const source = await calls("select sextant.describe_table('remote_1', 'acme_sales')");
    expect(source - plain).toBeLessThanOrEqual(1);
  } finally {
    await client.end();
  }
});
