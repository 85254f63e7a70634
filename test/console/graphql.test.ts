import { beforeAll, expect, test } from "vitest";
import { asRole, createToken, withTx } from "../helpers/db.ts";
import { gql as gqlRequest } from "../helpers/graphql.ts";
import { useTestServer } from "../helpers/setup.ts";

// The Admin page's three views (sql/console.sql: list_people, rate_limit_use,
// list_provisioned_schemas) through GraphQL over HTTP, as the console's are the same functions:
// acme's admin sees acme's, globex's admin nothing of acme's, a viewer is refused the two
// admin-only views, and inputs that try to widen them are refused or change nothing.
const { db, server } = useTestServer();
let acmeAdmin: string;
let acmeViewer: string;
let globexAdmin: string;
const gql = (token: string, query: string, variables?: Record<string, unknown>) => gqlRequest(server.url, token, query, variables);

const PEOPLE = "{ listPeople { nodes { email displayName accessLevel disabled } } }";
const USE = "{ rateLimitUse { nodes { scope principal windowName used cap } } }";
const SCHEMAS = "{ listProvisionedSchemas { nodes { schemaName tables pipelines expiresAt } } }";

beforeAll(async () => {
  acmeAdmin = await createToken(db, "acme", "gql-acme-admin", "admin");
  acmeViewer = await createToken(db, "acme", "gql-acme-viewer", "viewer");
  globexAdmin = await createToken(db, "globex", "gql-globex-admin", "admin");
  await db.admin.query("select * from sextant_private.upsert_user('kim@acme.test', null, $1, 'acme', 'analyst')", ["Kim <img src=x onerror=alert(1)>"]);
  await db.admin.query("select * from sextant_private.upsert_user('gil@globex.test', null, 'Gil', 'globex', 'admin')");
  // Current windows of the rate limiter's buckets (src/audit/rateLimiter.ts). Globex has a person
  // whose name looks like one of acme's bucket prefixes: it must stay globex's.
  const epoch = Math.floor(Date.now() / 1000);
  const at = (seconds: number) => new Date(Math.floor(epoch / seconds) * seconds * 1000).toISOString();
  await db.admin.query(`insert into sextant_private.rate_buckets (bucket, window_start, hits) values
    ('p:acme:kim@acme.test:hour', $1, 900), ('p:globex:gil@globex.test:hour', $1, 901), ('p:globex:p:acme:kim@acme.test:hour', $1, 902),
    ('t:globex:day', $2, 9999)
    on conflict (bucket, window_start) do update set hits = excluded.hits`, [at(3600), at(86400)]);
  // A provisioned schema of acme's (provision_schema, as its analyst would) with one table.
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__analyst");
    await c.query("select sextant.provision_schema('gqlscratch', 5)");
    await c.query("commit");
  });
  await db.admin.query("create table t_acme__gqlscratch.notes (id int)");
});

test("acme's admin sees acme's people, rate-limit use and provisioned schemas through GraphQL (others' text as data)", async () => {
  const people = await gql(acmeAdmin, PEOPLE);
  expect(people.body.errors).toBeUndefined();
  expect(people.body.data.listPeople.nodes).toEqual(expect.arrayContaining([
    { email: "kim@acme.test", displayName: "Kim <img src=x onerror=alert(1)>", accessLevel: "analyst", disabled: false },
  ]));
  expect(JSON.stringify(people.body)).not.toContain("globex.test");

  const use = await gql(acmeAdmin, USE);
  expect(use.body.errors).toBeUndefined();
  const nodes = use.body.data.rateLimitUse.nodes as { scope: string; principal: string | null; used: string | number }[];
  expect(nodes.find((n) => n.scope === "tenant")).toMatchObject({ principal: null, windowName: "day" });
  expect(nodes.filter((n) => n.scope === "person")).toContainEqual(expect.objectContaining({ principal: "kim@acme.test", windowName: "hour" }));
  expect(Number(nodes.find((n) => n.principal === "kim@acme.test")!.used)).toBe(900);
  expect(JSON.stringify(nodes)).not.toMatch(/gil@|901|902|9999/);

  const schemas = await gql(acmeAdmin, SCHEMAS);
  expect(schemas.body.errors).toBeUndefined();
  expect(schemas.body.data.listProvisionedSchemas.nodes).toEqual([
    expect.objectContaining({ schemaName: "t_acme__gqlscratch", tables: "1", pipelines: "0" }),
  ]);
});

test("globex's admin sees nothing of acme through the same fields", async () => {
  const [people, use, schemas] = await Promise.all([gql(globexAdmin, PEOPLE), gql(globexAdmin, USE), gql(globexAdmin, SCHEMAS)]);
  for (const r of [people, use, schemas]) expect(r.body.errors).toBeUndefined();
  expect(people.body.data.listPeople.nodes.map((p: { email: string }) => p.email)).toEqual(["gil@globex.test"]);
  // (The admin's own token is counted too, as it asks; its few calls are left out here.)
  const persons = use.body.data.rateLimitUse.nodes.filter((n: { scope: string; principal: string }) => n.scope === "person" && n.principal !== "gql-globex-admin");
  // The globex person named like an acme bucket is globex's, shown whole; acme's kim is not there.
  expect(persons.map((n: { principal: string; used: string }) => [n.principal, Number(n.used)]).sort()).toEqual([
    ["gil@globex.test", 901], ["p:acme:kim@acme.test", 902],
  ]);
  expect(Number(use.body.data.rateLimitUse.nodes.find((n: { scope: string }) => n.scope === "tenant").used)).toBeGreaterThanOrEqual(9999);
  expect(schemas.body.data.listProvisionedSchemas.nodes).toEqual([]);
  expect(JSON.stringify([people.body, use.body, schemas.body])).not.toMatch(/"kim@acme\.test"|t_acme__/);
});

test("a viewer is refused the people and the rate-limit use (SX403 from SQL); provisioned schemas are visible to anyone in the tenant", async () => {
  for (const [query, what] of [[PEOPLE, "see the people of the tenant"], [USE, "see rate-limit use"]] as const) {
    const r = await gql(acmeViewer, query);
    expect(r.body.errors?.[0]?.message).toBe(`only a tenant admin may ${what}`);
    expect(r.body.errors?.[0]?.extensions).toMatchObject({ code: "SX403" });
    expect(JSON.stringify(r.body.data ?? null)).not.toContain("kim@acme");
  }
  const schemas = await gql(acmeViewer, SCHEMAS);
  expect(schemas.body.errors).toBeUndefined();
  expect(schemas.body.data.listProvisionedSchemas.nodes.map((s: { schemaName: string }) => s.schemaName)).toEqual(["t_acme__gqlscratch"]);
});

test("hostile inputs: a tenant argument, a spoofed claim, negative or huge paging and aliases change nothing or are refused", async () => {
  // The functions take no tenant: an argument naming one is a GraphQL validation error.
  const withTenant = await gql(globexAdmin, `{ listPeople(tenant: "acme") { nodes { email } } }`);
  expect(withTenant.body.errors?.[0]?.message).toMatch(/Unknown argument "tenant"/);
  expect(withTenant.body.data).toBeUndefined();
  // A claim smuggled as a header or variable is not where the tenant comes from (the role is).
  const spoofed = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${globexAdmin}`, "x-tenant": "acme", "jwt.claims.tenant": "acme" },
    body: JSON.stringify({ query: PEOPLE, variables: { tenant: "acme" } }),
  });
  expect(JSON.stringify(await spoofed.json())).not.toContain("kim@acme");
  // Paging: a negative count is refused; a huge one is bounded by the server, never by the caller.
  const negative = await gql(acmeAdmin, "{ listPeople(first: -1) { nodes { email } } }");
  expect(negative.body.errors?.[0]?.message).toMatch(/first|negative|must be/i);
  const huge = await gql(acmeAdmin, "query($n: Int) { listPeople(first: $n, offset: 0) { nodes { email } } }", { n: 2_000_000_000 });
  expect(huge.status).toBeLessThan(500);
  expect(huge.body.errors?.[0]?.message ?? "").not.toMatch(/internal/i);
  if (!huge.body.errors) expect(huge.body.data.listPeople.nodes.map((p: { email: string }) => p.email)).toContain("kim@acme.test");
  // A viewer asking many times at once under aliases is refused each time, or held by the cost limits.
  const aliases = Array.from({ length: 5 }, (_, i) => `p${i}: listPeople { nodes { email } }`).join(" ");
  const many = await gql(acmeViewer, `{ ${aliases} }`);
  expect(many.body.errors?.length).toBeGreaterThan(0);
  expect(JSON.stringify(many.body.data ?? null)).not.toContain("@acme");
  // A token that is not a token.
  const forged = await gql("sx_forged_token", PEOPLE);
  expect(forged.status).toBe(401);
  expect(JSON.stringify(forged.body)).not.toContain("@acme");
});
