import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { projectRoot } from "../../src/db/paths.ts";
import { hashPassword } from "../../src/oauth/password.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { freePort } from "../helpers/ports.ts";
import { startTestServer } from "../helpers/server.ts";

// The console's HTTP API attacked directly (no browser): forged requests, tampered tenants and
// ids, a viewer trying an admin's action, dead sessions. Each must be refused with its code.
const PASSWORD = "a long enough password";
let db: TestDatabase;
let server: Awaited<ReturnType<typeof startTestServer>>;
let base: string;

interface Session { cookie: string; csrf: string }

async function signIn(email: string): Promise<Session> {
  const res = await fetch(`${base}/console/api/login`, {
    method: "POST", headers: { "content-type": "application/json", origin: base }, body: JSON.stringify({ email, password: PASSWORD }),
  });
  expect(res.status).toBe(200);
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  return { cookie, csrf: ((await res.json()) as { csrf: string }).csrf };
}

function call(s: Session | undefined, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${base}/console/api${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: base, ...(s ? { cookie: s.cookie, "x-csrf-token": s.csrf } : {}), ...headers },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // A small upload limit, to see the console's upload held to the server's (SX413).
  server = await startTestServer(db, { PORT: String(port), SEXTANT_PUBLIC_URL: base, SEXTANT_UPLOAD_LIMIT_MB: "1.5" });
  const hash = await hashPassword(PASSWORD);
  await db.admin.query("select * from sextant_private.upsert_user('ada@acme.test', $1, 'Ada', 'acme', 'admin')", [hash]);
  await db.admin.query("select * from sextant_private.upsert_user('vic@acme.test', $1, 'Vic', 'acme', 'viewer')", [hash]);
}, 120_000);
afterAll(async () => {
  await server?.close();
  await db?.drop();
});

test("a request without the CSRF token, with another's token, or from another origin is refused", async () => {
  const ada = await signIn("ada@acme.test");
  const vic = await signIn("vic@acme.test");
  const input = { input: { name: "forged" } };
  expect((await call(undefined, "/op/create_api_token", input, { cookie: ada.cookie })).status).toBe(403);
  expect((await call({ cookie: ada.cookie, csrf: vic.csrf }, "/op/create_api_token", input)).status).toBe(403);
  expect((await call(ada, "/op/create_api_token", input, { origin: "https://evil.example" })).status).toBe(403);
  const noOrigin = await fetch(`${base}/console/api/logout`, { method: "POST", headers: { cookie: ada.cookie, "x-csrf-token": ada.csrf, "content-type": "application/json" }, body: "{}" });
  expect(noOrigin.status).toBe(403);
  // A token of the right length with a non-ASCII character: a mismatch (bytes are compared), not an error.
  expect((await call({ cookie: ada.cookie, csrf: `\u00e9${ada.csrf.slice(1)}` }, "/op/create_api_token", input)).status).toBe(403);
  // A session cookie that does not percent-decode is only a value no session has.
  const malformed = await fetch(`${base}/console/api/session`, { headers: { cookie: `${ada.cookie.split("=")[0]}=%E0%A4%A` } });
  expect(malformed.status).toBe(401);
  // Nothing was created by the refused requests.
  expect((await db.admin.query("select count(*)::int as n from sextant.principals where name = 'forged'")).rows[0].n).toBe(0);
});

test("a viewer's session cannot do an admin's action; the refusal comes from SQL and is audited", async () => {
  const vic = await signIn("vic@acme.test");
  const res = await call(vic, "/op/create_api_token", { input: { name: "vic's robot", access_level: "admin" } });
  expect(res.status).toBe(403);
  expect(await res.json()).toMatchObject({ code: "SX403" });
  const list = await call(vic, "/op/list_api_tokens", { input: {} });
  expect(list.status).toBe(403);
  const note = await call(vic, "/op/save_table_note", { input: { table: "acme_sales.orders", description: "vic was here" } });
  expect(note.status).toBe(403);
  expect((await db.admin.query("select count(*)::int as n from sextant.knowledge_notes where description = 'vic was here'")).rows[0].n).toBe(0);
  const materialize = await call(vic, "/tool/provision_schema", { input: { name: "scratch" } });
  expect(materialize.status).toBe(400);
  expect(await materialize.text()).toMatch(/SX403|permission|analyst/i);
  await expect.poll(async () => (await db.admin.query(
    "select count(*)::int as n from sextant.audit_events where principal = 'vic@acme.test' and tool = 'console:create_api_token' and outcome = 'refused'")).rows[0].n, { timeout: 10_000 }).toBe(1);
});

test("dbt upload through the console is the server's upload handler: CSRF, origin and admin level checked, the tenant is the session's", async () => {
  const ada = await signIn("ada@acme.test");
  const vic = await signIn("vic@acme.test");
  const manifest = fs.readFileSync(path.join(projectRoot, "test/fixtures/dbt/cagov-dse-analytics/manifest.json"));
  const upload = (s: Session | undefined, query: string, headers: Record<string, string> = {}) => fetch(`${base}/console/api/dbt/upload${query}`, {
    method: "POST", body: manifest,
    headers: { "content-type": "application/json", origin: base, ...(s ? { cookie: s.cookie, "x-csrf-token": s.csrf } : {}), ...headers },
  });
  const projects = async () => (await db.admin.query("select tenant_slug, project_name from sextant.dbt_projects order by 1, 2")).rows;
  const before = await projects();
  expect((await upload(undefined, "")).status).toBe(401);
  expect((await upload(undefined, "", { cookie: ada.cookie })).status).toBe(403); // no CSRF token
  expect((await upload(ada, "", { origin: "https://evil.example" })).status).toBe(403);
  // A Bearer credential of its own is not taken: the session decides who uploads.
  expect((await upload(undefined, "", { authorization: "Bearer sxt_nope" })).status).toBe(401);
  const viewer = await upload(vic, "?project=vics");
  expect(viewer.status).toBe(403);
  expect(await viewer.json()).toMatchObject({ code: "SX403" });
  expect(await projects()).toEqual(before);
  // The admin's upload lands in the admin's tenant, whatever the query string says.
  const ok = await upload(ada, "?project=from_console&tenant=globex");
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ project: "from_console", counts: expect.objectContaining({ node: expect.any(Number) }) });
  expect(await projects()).toEqual(expect.arrayContaining([{ tenant_slug: "acme", project_name: "from_console" }]));
  expect((await projects()).filter((p) => p.tenant_slug === "globex")).toEqual(before.filter((p) => p.tenant_slug === "globex"));
  // Over the server's limits: SX413 through the same handler.
  const big = await fetch(`${base}/console/api/dbt/upload`, { method: "POST", body: Buffer.alloc(2 * 1024 * 1024, 32), headers: { "content-type": "application/json", origin: base, cookie: ada.cookie, "x-csrf-token": ada.csrf } });
  expect(big.status).toBe(413);
  await expect.poll(async () => (await db.admin.query(
    "select principal, auth_method, outcome from sextant.audit_events where tool = 'dbt_upload' order by at")).rows, { timeout: 10_000 })
    .toEqual([
      { principal: "vic@acme.test", auth_method: "console", outcome: "refused" },
      { principal: "ada@acme.test", auth_method: "console", outcome: "ok" },
      { principal: "ada@acme.test", auth_method: "console", outcome: expect.any(String) },
    ]);
});

test("the Admin page's views refuse a viewer; another tenant's provisioned schema cannot be torn down", async () => {
  const vic = await signIn("vic@acme.test");
  const ada = await signIn("ada@acme.test");
  for (const name of ["list_people", "rate_limit_use"]) {
    const res = await call(vic, `/op/${name}`, { input: {} });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "SX403" });
  }
  const people = await (await call(ada, "/op/list_people", { input: {} })).json();
  expect(people.data.map((p: { email: string }) => p.email).sort()).toEqual(["ada@acme.test", "vic@acme.test"]);
  await db.admin.query("insert into sextant.tenant_schemas (schema_name, tenant_slug, provisioned) values ('t_globex__keep', 'globex', true)");
  expect((await (await call(ada, "/op/list_provisioned_schemas", { input: {} })).json()).data).toEqual([]);
  const teardown = await call(ada, "/tool/teardown_schema", { input: { name: "t_globex__keep" } });
  expect(teardown.status).toBe(400);
  expect(await teardown.text()).toMatch(/SX404|not a schema your tenant provisioned/);
  expect((await db.admin.query("select count(*)::int as n from sextant.tenant_schemas where schema_name = 't_globex__keep'")).rows[0].n).toBe(1);
});

test("another tenant's tenant, tables, rows and tokens are unreachable by tampering; unknown tool and operation names are refused", async () => {
  const ada = await signIn("ada@acme.test");
  expect((await call(ada, "/tenant", { tenant: "globex" })).status).toBe(403);
  const table = await call(ada, "/tool/describe_table", { input: { schema: "globex_ops", table: "shipments" } });
  expect(table.status).toBe(400);
  expect(await table.text()).not.toContain("secret_note");
  const rows = await call(ada, "/tool/query", { input: { sql: "select * from globex_ops.shipments" } });
  expect(rows.status).toBe(400);
  expect(await rows.text()).not.toContain("globex secret");
  const globexToken = (await db.admin.query("select sextant_private.create_api_token('globex', 'g-bot', 'viewer', null) as t")).rows[0].t as string;
  const revoke = await call(ada, "/op/revoke_api_token", { input: { prefix: globexToken.slice(4, 12) } });
  expect(revoke.status).toBe(404);
  expect((await db.admin.query("select revoked_at from sextant_private.api_tokens where prefix = $1", [globexToken.slice(4, 12)])).rows[0].revoked_at).toBeNull();
  expect((await call(ada, "/tool/no_such_tool", { input: {} })).status).toBe(404);
  expect((await call(ada, "/op/constructor", { input: {} })).status).toBe(404);
  expect((await call(ada, "/op/__proto__", { input: {} })).status).toBe(404);
});

test("a forged, ended or idle session is not signed in; a wrong password is not either", async () => {
  expect((await fetch(`${base}/console/api/session`, { headers: { cookie: "sx_console=forged" } })).status).toBe(401);
  const ada = await signIn("ada@acme.test");
  expect((await fetch(`${base}/console/api/session`, { headers: { cookie: ada.cookie } })).status).toBe(200);
  expect((await call(ada, "/logout", {})).status).toBe(200);
  expect((await fetch(`${base}/console/api/session`, { headers: { cookie: ada.cookie } })).status).toBe(401);
  const again = await signIn("ada@acme.test");
  await db.admin.query("update sextant_private.console_sessions set last_seen_at = now() - interval '31 minutes' where ended_at is null");
  expect((await call(again, "/tool/whoami", { input: {} })).status).toBe(401);
  const bad = await fetch(`${base}/console/api/login`, { method: "POST", headers: { "content-type": "application/json", origin: base }, body: JSON.stringify({ email: "ada@acme.test", password: "wrong password!!" }) });
  expect(bad.status).toBe(401);
  expect(bad.headers.get("set-cookie")).toBeNull();
  const huge = await call(undefined, "/login", { email: "x".repeat(300_000) });
  expect(huge.status).toBe(413);
});

test("a pipeline typed into the console takes nothing from the server's environment: no secrets, no ${VAR}", async () => {
  const ada = await signIn("ada@acme.test");
  const secrets = await call(ada, "/op/create_pipeline", { input: { yaml: "name: p\nsecrets: { key: { env: HOME } }\n" } });
  expect(secrets.status).toBe(400);
  expect(await secrets.json()).toMatchObject({ code: "SX400", message: "secrets cannot be set from the console" });
  expect((await call(ada, "/op/create_pipeline", { input: { yaml: "name: [unclosed" } })).status).toBe(400);
  expect((await call(ada, "/op/create_pipeline", { input: { yaml: "- a list" } })).status).toBe(400);
  const env = await call(ada, "/op/create_pipeline", { input: { yaml: "name: envp\ntarget_schema: t_acme__nope\nsource: { name: s, kind: http, base_url: 'http://${HOME}/' }\nentities: [{ name: a }]\n" } });
  // Refused by SQL for its own reasons (no such provisioned schema); what matters: ${HOME} was not expanded.
  expect(await env.text()).not.toContain(process.env.HOME ?? "/root");
});

test("a person removed from the tenant loses the console at once", async () => {
  const vic = await signIn("vic@acme.test");
  expect((await call(vic, "/tool/whoami", { input: {} })).status).toBe(200);
  await db.admin.query("delete from sextant_private.user_tenants where user_id = (select id from sextant_private.users where email = 'vic@acme.test')");
  expect((await call(vic, "/tool/whoami", { input: {} })).status).toBe(409);
});

test("Slack people are linked once in the console by a tenant admin, in a workspace of their own tenant only; Slack then knows the person", async () => {
  await db.admin.query("select sextant_private.map_slack_workspace('TACME', null, 'acme')");
  await db.admin.query("select sextant_private.map_slack_workspace('TGLOBEX', null, 'globex')");
  const ada = await signIn("ada@acme.test");
  const vic = await signIn("vic@acme.test");
  const linked = await call(ada, "/op/link_slack_person", { input: { team_id: "TACME", slack_user_id: "U0ADA", person: "ada@acme.test" } });
  expect(linked.status).toBe(200);
  expect(await linked.json()).toMatchObject({ data: { team_id: "TACME", slack_user_id: "U0ADA", person: "ada@acme.test" } });
  const who = await db.admin.query("select sextant_private.slack_resolve('TACME', 'C1', 'U0ADA') as r");
  expect(who.rows[0].r).toMatchObject({ tenant: "acme", person: "ada@acme.test" });
  const list = await call(ada, "/op/list_slack_people", { input: {} });
  expect((await list.json()).data).toEqual([expect.objectContaining({ team_id: "TACME", slack_user_id: "U0ADA", linked_by: "ada@acme.test" })]);
  // A viewer cannot link; nobody links into another tenant's workspace; hostile ids are refused by the table's checks.
  expect((await call(vic, "/op/link_slack_person", { input: { team_id: "TACME", slack_user_id: "U0VIC", person: "vic@acme.test" } })).status).not.toBe(200);
  expect((await call(ada, "/op/link_slack_person", { input: { team_id: "TGLOBEX", slack_user_id: "U0ADA2", person: "ada@acme.test" } })).status).not.toBe(200);
  expect((await call(ada, "/op/link_slack_person", { input: { team_id: "TACME'; drop table x; --", slack_user_id: "U1", person: "p" } })).status).not.toBe(200);
  expect((await db.admin.query("select count(*)::int as n from sextant.slack_people")).rows[0].n).toBe(1);
  // Unlinking ends it: Slack no longer knows the person.
  expect((await call(ada, "/op/unlink_slack_person", { input: { team_id: "TACME", slack_user_id: "U0ADA" } })).status).toBe(200);
  expect((await db.admin.query("select sextant_private.slack_resolve('TACME', 'C1', 'U0ADA') as r")).rows[0].r).toHaveProperty("refusal");
});
