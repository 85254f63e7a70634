import { beforeAll, expect, test } from "vitest";
import { getIntrospectionQuery } from "postgraphile/graphql";
import { createToken } from "./helpers/db.ts";
import { eventually, gql as gqlRequest } from "./helpers/graphql.ts";
import { useTestServer } from "./helpers/setup.ts";

const { db, server } = useTestServer();
let acme: string;
let globex: string;

beforeAll(async () => {
  // A low per-minute limit for acme, so counting per field shows within one test (before its
  // first request: the server reads a tenant's limits then).
  await db.admin.query("update sextant.tenants set rate_per_minute = 100 where slug = 'acme'");
  acme = await createToken(db, "acme", "gql-acme");
  globex = await createToken(db, "globex", "gql-globex", "admin");
});

async function gql(token: string, query: string) {
  return gqlRequest(server.url, token, query);
}

test("whoami and listSchemas come from the same SQL functions as MCP", async () => {
  const { body } = await gql(acme, "{ whoami { tenant accessLevel readOnly } listSchemas { nodes { schemaName tenant tableCount } } }");
  expect(body.errors).toBeUndefined();
  expect(body.data.whoami).toEqual({ tenant: "acme", accessLevel: "viewer", readOnly: false });
  expect(body.data.listSchemas.nodes).toEqual([{ schemaName: "acme_sales", tenant: "acme", tableCount: 1 }]);
});

test("tables with RLS show each tenant only its own rows", async () => {
  const q = "{ allTenants { nodes { slug } } allTenantSchemas { nodes { schemaName } } allPrincipals { nodes { name } } }";
  const a = await gql(acme, q);
  const g = await gql(globex, q);
  expect(a.body.data.allTenants.nodes).toEqual([{ slug: "acme" }]);
  expect(g.body.data.allTenants.nodes).toEqual([{ slug: "globex" }]);
  expect(g.body.data.allTenantSchemas.nodes).toEqual([{ schemaName: "globex_ops" }]);
  expect(JSON.stringify(g.body.data.allPrincipals)).not.toContain("gql-acme");
});

test("sextant_private is not part of the GraphQL schema", async () => {
  const { body } = await gql(acme, "{ __schema { types { name } queryType { fields { name } } } }");
  const data = body.data as { __schema: { types: { name: string }[]; queryType: { fields: { name: string }[] } } };
  const names = [...data.__schema.types, ...data.__schema.queryType.fields].map((t) => t.name);
  // sextant.list_api_tokens / create_api_token / revoke_api_token (sql/console.sql) are the
  // tenant admin's public API over their own tenant's tokens; the private table and functions
  // behind them are not.
  const exposed = names.filter((n) => !/^(list|create|revoke)ApiTokens?/i.test(n));
  expect(exposed.filter((n) => /apiToken|ApiToken|authenticateToken|createTenant|Setting/.test(n))).toEqual([]);
  expect(names.length).toBeGreaterThan(20);
});

test("a GraphQL syntax error is reported without internals", async () => {
  const { status, body } = await gql(acme, "{ whoami { ");
  expect(status).toBe(400);
  expect(body.errors?.[0].message).toMatch(/Syntax Error/);
  expect(JSON.stringify(body)).not.toMatch(/\.ts:\d+|node_modules/);
});

test("the playground is served at /graphiql", async () => {
  const res = await fetch(`${server.url}/graphiql`);
  expect(res.status).toBe(200);
  expect(await res.text()).toMatch(/ruru|graphiql/i);
});

test("health and readiness", async () => {
  const health = await fetch(`${server.url}/health`);
  expect(await health.json()).toMatchObject({ status: "ok", database: "up" });
  const ready = await fetch(`${server.url}/ready`);
  expect(ready.status).toBe(200);
});

test("every catalog and query tool is a GraphQL field backed by the same SQL function", async () => {
  const { body } = await gql(
    globex,
    `{ listDatabases { nodes { databaseName } }
       listTables(schemaName: "globex_ops") { nodes { tableName estimatedRows } }
       describeTable(tableName: "shipments") { schemaName columns primaryKey }
       getMetadata(schemaName: "globex_ops") { tables }
       listFunctions { nodes { functionName } }
       sampleTable(tableName: "shipments", n: 2) { rowCount rows }
       query(sql: "select count(*) as n from globex_ops.shipments") { columns rows }
       explainQuery(sql: "select 1") { totalCost withinBudget } }`,
  );
  expect(body.errors).toBeUndefined();
  const d = body.data;
  expect(d.listDatabases.nodes).toEqual([{ databaseName: db.name }]);
  expect(d.listTables.nodes.map((t: { tableName: string }) => t.tableName)).toEqual(["shipments"]);
  expect(d.describeTable).toMatchObject({ schemaName: "globex_ops", primaryKey: ["id"] });
  expect(d.getMetadata.tables[0].table).toBe("globex_ops.shipments");
  // secret_note matches the "secret" pattern: masked in samples through every door
  expect(d.sampleTable.rows).toEqual([{ id: 1, secret_note: "[masked]" }, { id: 2, secret_note: "[masked]" }]);
  expect(d.query).toEqual({ columns: [{ name: "n", type: "bigint" }], rows: [{ n: 20 }] });
  expect(d.explainQuery.withinBudget).toBe(true);
});

test("GraphQL's query field runs the parser guard and the database walls", async () => {
  const refused = await gql(acme, '{ query(sql: "select pg_sleep(1)") { rowCount } }');
  expect(refused.body.errors?.[0]).toMatchObject({ message: expect.stringContaining("pg_sleep() is not allowed"), extensions: { code: "SX400" } });
  const crossing = await gql(acme, '{ query(sql: "select * from globex_ops.shipments") { rowCount } }');
  expect(crossing.body.errors?.[0].extensions.code).toBe("SX404"); // unreadable answers like missing
  expect(JSON.stringify(crossing.body)).not.toContain("globex secret");
});

async function auditOf(principal: string) {
  return (await db.admin.query(
    "select tool, outcome, error_code, row_count, duration_ms, sql from sextant.audit_events where principal = $1 order by id", [principal])).rows;
}

test("every root field is one call: 60 aliased query fields count 60, the next 60 get SX429 and run nothing", async () => {
  const token = await createToken(db, "acme", "alias-counter");
  const fields = Array.from({ length: 60 }, (_, i) => `q${i}: query(sql: "select ${i} as n") { rowCount }`).join("\n");
  const first = await gql(token, `{ ${fields} }`);
  expect(first.body.errors).toBeUndefined();
  expect(Object.keys(first.body.data)).toHaveLength(60);
  const second = await gql(token, `{ ${fields} }`);
  expect(second.body.data ?? null).toBeNull();
  expect(second.body.errors?.[0]).toMatchObject({ message: expect.stringContaining("rate limit reached: 100 calls per minute"), extensions: { code: "SX429" } });
  // Counted in PostgreSQL, shared by every server process: 60, and the refused request's first
  // field, counted at the HTTP door before the request is read (so invalid requests count too).
  const hits = await eventually(async () => (await db.admin.query(
    "select sum(hits)::int as n from sextant_private.rate_buckets where bucket = 'p:acme:alias-counter:minute'")).rows[0].n === 61);
  expect(hits).toBe(true);
  const events = await eventually(async () => { const e = await auditOf("alias-counter"); return e.length >= 61 ? e : undefined; });
  expect(events!.filter((e) => e.tool === "graphql:query" && e.outcome === "ok" && e.row_count === 1)).toHaveLength(60);
  expect(events!.filter((e) => e.outcome === "refused")).toEqual([expect.objectContaining({ tool: "graphql", error_code: "SX429" })]);
  // 39 more fields reach the 100; then even a request that would never run is refused at the door, with HTTP 429.
  const rest = await gql(token, `{ ${Array.from({ length: 39 }, (_, i) => `w${i}: whoami { tenant }`).join(" ")} }`);
  expect(rest.body.errors).toBeUndefined();
  const more = await gql(token, "{ whoami { tenant } } invalid");
  expect(more.status).toBe(429);
  expect(JSON.stringify(more.body)).toContain("SX429");
  // Other principals of the tenant keep their own per-minute budget.
  expect((await gql(acme, "{ whoami { tenant } }")).body.data.whoami.tenant).toBe("acme");
});

test("describeTable, sampleTable, listTables and allPipelines are audited with rows and time, a refused field with its code", async () => {
  const token = await createToken(db, "globex", "audited-reader", "admin");
  const { body } = await gql(token, `{ describeTable(tableName: "shipments") { schemaName }
    sampleTable(tableName: "shipments", n: 3) { rowCount }
    listTables(schemaName: "globex_ops") { nodes { tableName } }
    allPipelines { nodes { name } }
    bad: query(sql: "select pg_sleep(1)") { rowCount } }`);
  expect(body.data.sampleTable.rowCount).toBe(3);
  const events = await eventually(async () => { const e = await auditOf("audited-reader"); return e.length >= 5 ? e : undefined; });
  const byTool = Object.fromEntries(events!.map((e) => [e.tool, e]));
  expect(byTool["graphql:describeTable"]).toMatchObject({ outcome: "ok", row_count: 1 });
  expect(byTool["graphql:sampleTable"]).toMatchObject({ outcome: "ok", row_count: 3 });
  expect(byTool["graphql:listTables"]).toMatchObject({ outcome: "ok", row_count: 1 });
  expect(byTool["graphql:allPipelines"]).toMatchObject({ outcome: "ok", row_count: 0 });
  expect(byTool["graphql:query"]).toMatchObject({ outcome: "refused", error_code: "SX400", sql: "select pg_sleep(1)" });
  for (const e of events!) expect(Number(e.duration_ms)).toBeGreaterThanOrEqual(0);
});

test("the standard introspection query (GraphiQL, codegen) fits the cost limits", async () => {
  const { body } = await gql(acme, getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true }));
  expect(body.errors).toBeUndefined();
  expect(body.data.__schema.queryType.name).toBe("Query");
});

test("a query over the cost limits is refused before it runs, with SX413", async () => {
  const deep = "{ allTenants(first: 1) { nodes { principalsByTenantSlug(first: 1) { nodes { tenantByTenantSlug { principalsByTenantSlug(first: 1) { nodes { tenantByTenantSlug { principalsByTenantSlug(first: 1) { nodes { name } } } } } } } } } } }";
  const { status, body } = await gql(acme, deep);
  expect(status).toBe(400);
  expect(body.errors?.[0]).toMatchObject({ message: "query is too costly: nesting deeper than 10 levels", extensions: { code: "SX413" } });
  const wide = "{ allTenants { nodes { principalsByTenantSlug { nodes { tenantByTenantSlug { principalsByTenantSlug { nodes { name } } } } } } } }";
  expect((await gql(acme, wide)).body.errors?.[0]).toMatchObject({ message: "query is too costly: an estimated over 50000 values", extensions: { code: "SX413" } });
  const paged = await gql(acme, "query($n: Int) { allPrincipals(first: $n) { nodes { name } } }");
  expect(paged.body.errors).toBeUndefined();
});
