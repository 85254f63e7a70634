import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import yazl from "yazl";
import { projectRoot } from "../../src/db/paths.ts";
import { loadDbtArtifacts } from "../../src/dbt/loadArtifacts.ts";
import { hashPassword } from "../../src/oauth/password.ts";
import { pipelineHelpers } from "../helpers/pipelines.ts";
import { startConsoleStack, type ConsoleStack } from "../helpers/console.ts";
import { asRole, withTx, type TestDatabase } from "../helpers/db.ts";
import { startTestWorker } from "../helpers/worker.ts";
import type { WorkerHandle } from "../../src/worker/index.ts";
import { screenshot, seriousViolations } from "./browser.ts";
import { mcpAppsSuite } from "./mcpApps.ts";
import { startFakeOidc } from "../helpers/fakeOidc.ts";
import { UPSTREAM_CLIENT, upstreamEnv, upstreamSignInSuite, type FakeOidc } from "./upstreamSignIn.ts";

// The console in headless Chromium, as people use it: sign in, pick a tenant, browse, search a
// dbt model and open its lineage, query and page, chart, tokens. Every page is screenshotted and
// checked with axe-core. Markup planted in data, dbt docs and knowledge must show as text.
// The upstream sign-in suite (upstreamSignIn.ts) and the MCP Apps suite (mcpApps.ts) run last
// on the same database, server and Chromium; the server knows a stand-in OpenID provider.
const PASSWORD = "a long enough password";
const HOSTILE = `<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>`;
let stack: ConsoleStack;
let idp: FakeOidc;
let db: TestDatabase;
let base: string;
let browser: Browser;
let page: Page;
let worker: WorkerHandle;
let acceptDialogs = false;
const csvDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-console-csv-"));

beforeAll(async () => {
  idp = await startFakeOidc(UPSTREAM_CLIENT);
  stack = await startConsoleStack(upstreamEnv(idp));
  ({ db, base, browser } = stack);
  const hash = await hashPassword(PASSWORD);
  await db.admin.query("select * from sextant_private.upsert_user('pat@acme.test', $1, 'Pat', 'acme', 'admin')", [hash]);
  await db.admin.query("select * from sextant_private.upsert_user('pat@acme.test', null, null, 'globex', 'viewer')");
  await db.admin.query("select * from sextant_private.upsert_user('eve@acme.test', null, $1, 'acme', 'viewer')", [`Eve ${HOSTILE}`]);
  const client = new pg.Client({ connectionString: db.adminUrl });
  await client.connect();
  await loadDbtArtifacts(client, { tenant: "acme", dir: path.join(projectRoot, "test/fixtures/dbt/fivetran-recurly") });
  // Others' text with markup in it: a table comment, a row, a dbt description.
  // A connected app (an OAuth grant) for the admin page.
  await client.query("insert into sextant_private.oauth_clients (client_id, metadata) values ('c-1', '{\"client_name\": \"Notebook <i>app</i>\"}')");
  await client.query(`insert into sextant.oauth_grants (tenant_slug, user_id, principal, client_id, client_name, access_level, resource)
    select 'acme', id, email, 'c-1', 'Notebook <i>app</i>', 'viewer', 'http://x/mcp' from sextant_private.users where email = 'pat@acme.test'`);
  await client.query(`comment on table acme_sales.orders is ${client.escapeLiteral(`Orders ${HOSTILE}`)}`);
  await client.end();
  await db.admin.query("update acme_sales.orders set customer = $1 where id = 1", [HOSTILE]);
  await db.admin.query("insert into sextant.learnings (tenant_slug, table_ref, learning, confidence, recorded_by) values ('acme', 'acme_sales.orders', $1, 0.7, 'an agent')", [`Learned ${HOSTILE}`]);
  await db.admin.query("update sextant.dbt_nodes set description = $1 where name = 'recurly__account_overview'", [`Accounts ${HOSTILE}`]);
  // A CSV the pipeline test loads, and the worker that runs pipelines.
  fs.writeFileSync(path.join(csvDir, "people.csv"), ["id,name", ...Array.from({ length: 3000 }, (_, i) => `${i + 1},person ${i + 1}`)].join("\n") + "\n");
  await pipelineHelpers(() => db).provision("acme", "files");
  worker = await startTestWorker(db, { fileDir: csvDir });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on("dialog", (d) => void (acceptDialogs ? d.accept() : d.dismiss()));
}, 120_000);
afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await idp?.close();
  fs.rmSync(csvDir, { recursive: true, force: true });
});

async function checkPage(name: string) {
  await screenshot(page, name);
  expect(await seriousViolations(page)).toEqual([]);
  expect(await page.title()).not.toBe("pwned");
  expect(await page.locator("main img, main script").count()).toBe(0);
}

test("a person signs in, picks one of their tenants, and browses schemas and a table (markup shown as text)", { timeout: 60_000 }, async () => {
  const res = await page.goto(`${base}/console`);
  const csp = res!.headers()["content-security-policy"]!;
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(res!.headers()["x-frame-options"]).toBe("DENY");
  await page.getByLabel("E-mail").fill("pat@acme.test");
  await page.getByLabel("Password").fill("wrong password!!");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByRole("alert").textContent()).resolves.toMatch(/not right/);
  await checkPage("signin");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { name: "Pick a tenant" }).waitFor();
  const cookie = (await page.context().cookies()).find((c) => c.name === "sx_console")!;
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/console" });
  await checkPage("pick-tenant");
  await page.getByRole("button", { name: /Acme/ }).click();
  await page.getByRole("heading", { name: "Explore" }).waitFor();
  await page.getByRole("link", { name: "acme_sales", exact: true }).click();
  await page.getByRole("link", { name: "acme_sales.orders" }).click();
  await page.getByRole("heading", { name: "acme_sales.orders" }).waitFor();
  await page.getByRole("region", { name: "Sample rows of orders" }).waitFor();
  // The sample's rows (arrays in column order on the wire) fill one cell per column, under its header.
  const sampleGrid = page.getByRole("region", { name: "Sample rows of orders" });
  const sampleHeads = await sampleGrid.locator("thead th").allTextContents();
  expect(sampleHeads.length).toBeGreaterThan(2);
  expect(await sampleGrid.locator("tbody tr").count()).toBe(20);
  expect(await sampleGrid.locator("tbody tr").first().locator("td").count()).toBe(sampleHeads.length);
  await page.getByRole("table", { name: "Columns of orders" }).waitFor();
  expect(await page.textContent("main")).toContain(`Orders ${HOSTILE}`);
  // The team knowledge section loads on its own; wait for it rather than for the page.
  await page.getByRole("heading", { name: "Learnings" }).waitFor();
  expect(await page.textContent("main")).toContain(`Learned ${HOSTILE}`);
  // Team knowledge: the admin writes a note (markup stays text) and confirms the learning.
  await page.getByRole("button", { name: "Edit note" }).click();
  await page.getByLabel("Note about this table").fill(`Note ${HOSTILE}`);
  await page.getByRole("button", { name: "Save note" }).click();
  await page.getByText(`Note ${HOSTILE}`).waitFor();
  await page.getByRole("button", { name: /^Confirm learning/ }).click();
  await page.getByText("(confirmed, confidence").waitFor();
  expect((await db.admin.query("select updated_by from sextant.knowledge_notes where table_ref = 'acme_sales.orders'")).rows[0].updated_by).toBe("pat@acme.test");
  await checkPage("table");
});

test("a dbt model is found by search, its page shows the lineage graph, and a node opens its model", { timeout: 30_000 }, async () => {
  await page.getByRole("link", { name: "dbt models" }).click();
  await page.getByLabel("Search models in plain English").fill("account overview");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: "recurly__account_overview" }).click();
  await page.getByRole("heading", { name: "recurly__account_overview" }).waitFor();
  expect(await page.textContent("main")).toContain(`Accounts ${HOSTILE}`);
  const nodes = page.locator(".lineage svg g.node");
  expect(await nodes.count()).toBeGreaterThan(2);
  expect(await page.locator(".lineage svg polyline.edge").count()).toBeGreaterThan(1);
  await checkPage("model");
  await page.getByRole("button", { name: "Zoom in" }).click();
  const upstream = page.getByRole("list", { name: "Models in the lineage" }).getByRole("button").first();
  const name = (await upstream.textContent())!;
  await upstream.click();
  await page.getByRole("heading", { name, exact: true }).waitFor();
});

test("a query runs, pages with next_offset, draws a chart, explains, and lands in the person's history", { timeout: 30_000 }, async () => {
  await page.getByRole("link", { name: "Query" }).click();
  const editor = page.getByRole("textbox", { name: /SQL query/ });
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("select id, customer, amount from acme_sales.orders order by id");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await page.getByRole("status").filter({ hasText: "Rows 1–" }).waitFor();
  expect(await page.getByRole("region", { name: "Query result" }).textContent()).toContain(HOSTILE);
  await page.getByRole("button", { name: "Next page" }).isDisabled().then((d) => expect(d).toBe(true)); // 50 rows, page of 100
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("select g as n, g * g as square from generate_series(1, 250) g");
  await page.keyboard.press("Control+Enter");
  await page.getByRole("status").filter({ hasText: "Rows 1–100 (more rows exist)" }).waitFor();
  await page.getByRole("button", { name: "Next page" }).click();
  await page.getByRole("status").filter({ hasText: "Rows 101–200" }).waitFor();
  const grid = page.getByRole("region", { name: "Query result" });
  expect(await grid.locator("tbody tr").first().textContent()).toContain("101");
  // Each value in its column's cell (rows are arrays in column order on the wire): #, n, square.
  expect(await grid.locator("thead th").allTextContents()).toEqual(["#", "n integer", "square integer"]);
  expect(await grid.locator("tbody tr").first().locator("td").allTextContents()).toEqual(["101", "101", "10201"]);
  expect(await grid.locator("tbody tr").last().locator("td").allTextContents()).toEqual(["200", "200", "40000"]);
  // Two numeric columns: a scatter chart, one point per row of the page.
  expect(await page.locator("svg.chart circle").count()).toBe(100);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
  expect(download.suggestedFilename()).toBe("sextant-rows-101-200.csv");
  const csv = fs.readFileSync((await download.path())!, "utf8");
  expect(csv.startsWith("n,square\r\n101,10201\r\n102,10404\r\n")).toBe(true);
  expect(csv.endsWith("200,40000\r\n")).toBe(true);
  expect(csv.split("\r\n")).toHaveLength(102);
  await page.getByRole("button", { name: "Explain" }).click();
  await page.getByRole("heading", { name: "Plan" }).waitFor();
  await page.getByText("generate_series(1, 250)").first().waitFor();
  await checkPage("query");
});

test("a pipeline is defined from YAML, run, and its progress followed live until it succeeds", { timeout: 40_000 }, async () => {
  await page.getByRole("link", { name: "Pipelines" }).click();
  await page.getByRole("heading", { name: "Pipelines" }).waitFor();
  await page.getByRole("button", { name: "Save pipeline" }).click();
  await page.getByRole("button", { name: "Run pipeline people" }).click();
  await page.getByText("people: 3000 rows (done)").waitFor({ timeout: 30_000 });
  await page.locator(".status").filter({ hasText: "succeeded" }).waitFor({ timeout: 30_000 });
  // The list shows the last run (read afresh).
  await page.reload();
  await page.getByRole("cell", { name: /^succeeded/ }).waitFor();
  await checkPage("pipelines");
  expect((await db.admin.query("select count(*)::int as n from t_acme__files.people")).rows[0].n).toBe(3000);
});

/** A zip of `dir`'s dbt artifacts, as a person would zip their target directory. */
function zipOf(dir: string, names: string[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const name of names) zip.addFile(path.join(dir, name), `target/${name}`);
  zip.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    zip.outputStream.on("data", (c: Buffer) => chunks.push(c));
    zip.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on("error", reject);
  });
}

test("a tenant admin uploads a dbt project (real artifacts, zipped) and follows its progress; its models are searchable at once", { timeout: 60_000 }, async () => {
  const zip = await zipOf(path.join(projectRoot, "test/fixtures/dbt/cagov-dse-analytics"), ["manifest.json", "catalog.json", "run_results.json"]);
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("heading", { name: "dbt project" }).waitFor();
  // A slow uplink (Chromium's own throttling), so the progress is there to be seen.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: Math.ceil(zip.length / 3) });
  await page.getByLabel("Artifacts (.zip, .json or .json.gz)").setInputFiles({ name: "target.zip", mimeType: "application/zip", buffer: zip });
  await page.getByRole("button", { name: "Upload" }).click();
  const progress = page.getByRole("progressbar", { name: "Sending the artifacts" });
  await progress.waitFor();
  await expect.poll(async () => Number(await progress.getAttribute("value")), { timeout: 10_000 }).toBeGreaterThan(0);
  await page.getByText(/^Sent \d+% \(\d+ of \d+ KB\)$/).first().waitFor();
  await screenshot(page, "admin-upload-progress");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await page.getByText(/^Loaded dbt project /).waitFor({ timeout: 30_000 });
  expect(await page.getByRole("button", { name: "Upload" }).isEnabled()).toBe(true);
  const loaded = (await db.admin.query("select project_name from sextant.dbt_projects where tenant_slug = 'acme' order by loaded_at desc limit 1")).rows[0];
  expect(await page.textContent("main")).toContain(`Loaded dbt project ${loaded.project_name}`);
  // The server's own upload handler ran it: audited as dbt_upload, by the person, signed in to the console.
  await expect.poll(async () => (await db.admin.query(
    "select tool, principal, auth_method, outcome from sextant.audit_events where tool = 'dbt_upload' order by at desc limit 1")).rows[0], { timeout: 10_000 })
    .toEqual({ tool: "dbt_upload", principal: "pat@acme.test", auth_method: "console", outcome: "ok" });
  await checkPage("admin-upload");
  await page.getByRole("link", { name: "Search its models" }).click();
  await page.getByLabel("Search models in plain English").fill("supplier purchases");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: "stg_scprs__purchases" }).waitFor();
});

test("a tenant admin creates a token (shown once), sees it listed, revokes it; the audit log lists the calls", { timeout: 30_000 }, async () => {
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByLabel("For (person or agent)").fill("ci robot");
  await page.getByLabel("Access level").selectOption("analyst");
  await page.getByRole("button", { name: "Create token" }).click();
  const token = (await page.locator("#new-token").textContent())!;
  expect(token).toMatch(/^sxt_[0-9a-f]{8}_/);
  const ok = await fetch(`${base}/graphql`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ query: "{ whoami { tenant accessLevel } }" }) });
  expect(await ok.json()).toMatchObject({ data: { whoami: { tenant: "acme", accessLevel: "analyst" } } });
  await page.getByRole("button", { name: "Done" }).click();
  expect(await page.textContent("main")).not.toContain(token);
  await page.getByRole("button", { name: `Revoke token ${token.slice(4, 12)} of ci robot` }).click();
  await page.getByRole("row").filter({ hasText: token.slice(4, 12) }).filter({ hasText: "revoked" }).waitFor();
  const after = await fetch(`${base}/graphql`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ query: "{ whoami { tenant } }" }) });
  expect(after.status).toBe(401);
  await page.getByRole("button", { name: "Revoke Notebook <i>app</i> for pat@acme.test" }).click();
  await page.getByRole("heading", { name: "Connected apps (OAuth grants)" }).waitFor();
  await expect.poll(async () => (await db.admin.query("select revoked_at from sextant.oauth_grants where client_id = 'c-1'")).rows[0].revoked_at, { timeout: 10_000 }).not.toBeNull();
  // People (a name with markup shown as text), provisioned schemas with their expiry (one torn
  // down here, through the teardown_schema tool), and what the tenant used of its rate limits.
  const people = page.getByRole("table", { name: "People of this tenant and their access levels" });
  await people.getByRole("row").filter({ hasText: "eve@acme.test" }).filter({ hasText: `Eve ${HOSTILE}` }).waitFor();
  expect(await people.getByRole("row").filter({ hasText: "pat@acme.test" }).textContent()).toContain("admin");
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__analyst");
    await c.query("select sextant.provision_schema('scratch', 48)");
    await c.query("commit");
  });
  await page.reload();
  const schemas = page.getByRole("table", { name: "Schemas provisioned by this tenant, with their expiry" });
  const scratch = schemas.getByRole("row").filter({ hasText: "t_acme__scratch" });
  const expires = new Date((await scratch.getByRole("cell").nth(1).textContent())!);
  expect(expires.getTime() - Date.now()).toBeGreaterThan(47 * 3600_000);
  expect(await schemas.getByRole("row").filter({ hasText: "t_acme__files" }).textContent()).toContain("never");
  const use = page.getByRole("table", { name: /Calls used against the limits/ });
  const tenantDay = use.getByRole("row").filter({ hasText: "the whole tenant" });
  expect(Number(await tenantDay.getByRole("cell").nth(3).textContent())).toBeGreaterThan(10);
  // The counters are written in batches: refresh until this minute's calls are in.
  await expect.poll(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    return use.getByRole("row").filter({ hasText: "pat@acme.test" }).filter({ hasText: "per minute" }).count();
  }, { timeout: 10_000 }).toBe(1);
  acceptDialogs = true;
  await page.getByRole("button", { name: "Tear down schema t_acme__scratch" }).click();
  await scratch.waitFor({ state: "detached" });
  acceptDialogs = false;
  expect((await db.admin.query("select count(*)::int as n from pg_namespace where nspname = 't_acme__scratch'")).rows[0].n).toBe(0);
  await page.getByLabel("Tool").fill("query");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByRole("row").filter({ hasText: "generate_series" }).first().waitFor();
  await checkPage("admin");
  // Dark mode (the system setting) keeps readable contrast too.
  await page.emulateMedia({ colorScheme: "dark" });
  await screenshot(page, "admin-dark");
  expect(await seriousViolations(page)).toEqual([]);
  await page.emulateMedia({ colorScheme: "light" });
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Sextant" }).waitFor();
});

upstreamSignInSuite(() => stack, () => idp);
mcpAppsSuite(() => stack);
