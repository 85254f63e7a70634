import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { hashPassword } from "../../src/oauth/password.ts";
import { freePort } from "../helpers/ports.ts";
import { useServer, useTestDatabase } from "../helpers/setup.ts";
import { launchChromium, screenshot, seriousViolations } from "../console/browser.ts";
import { loadAcmeProject } from "./fixtures.ts";
import { useModelServer } from "./modelServer.ts";

// The console's Ask page in headless Chromium: a signed-in person asks, sees the steps, the
// answer, the SQL it ran and the result; the same console session, CSRF and origin checks as
// every console action. Markup in the model's answer and in the data shows as text.
const PASSWORD = "a long enough password";
const HOSTILE = `<img src=x onerror="document.title='pwned'">`;
const db = useTestDatabase();
const model = useModelServer();
let base: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  await loadAcmeProject(db);
  await db.admin.query("update acme_sales.orders set customer = $1 where id = 50", [HOSTILE]);
});
useServer(db, async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  return { PORT: String(port), SEXTANT_PUBLIC_URL: base, SEXTANT_LLM_URL: model.anthropicUrl, SEXTANT_LLM_MODEL: "m" };
});
beforeAll(async () => {
  await db.admin.query("select * from sextant_private.upsert_user('cal@acme.test', $1, 'Cal', 'acme', 'viewer')", [await hashPassword(PASSWORD)]);
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
}, 120_000);
afterAll(async () => {
  await browser?.close();
});

test("a signed-in person asks on the console's Ask page and gets the answer, its SQL and the rows", { timeout: 60_000 }, async () => {
  model.state.turns = [
    { calls: [{ name: "search_dbt_models", arguments: { query: "largest orders" } }] },
    { calls: [{ name: "query", arguments: { sql: "select customer, amount from acme_sales.orders order by amount desc limit 3" } }] },
    { text: `The largest order is 500 dollars. ${HOSTILE}\nchart: bar x=customer y=amount` },
  ];
  await page.goto(`${base}/console`);
  await page.getByLabel("E-mail").fill("cal@acme.test");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Ask" }).click();
  await page.getByRole("heading", { name: "Ask", exact: true }).waitFor();
  await page.getByLabel("Your question").fill("What are our largest orders?");
  await page.getByRole("button", { name: "Ask" }).click();
  await page.getByText("The largest order is 500 dollars.").waitFor();
  const main = await page.textContent("main");
  expect(main).toContain(HOSTILE);
  expect(main).toContain("search_dbt_models: done");
  expect(main).toContain("select customer, amount from acme_sales.orders order by amount desc limit 3");
  expect(main).toContain("dbt models: orders");
  await page.getByRole("region", { name: "Result of question 1" }).waitFor();
  expect(await page.locator(".ask svg").count()).toBeGreaterThan(0);
  // The result's rows, each value under its column, and one bar per row (amount by customer).
  const table = page.getByRole("region", { name: "Result of question 1" });
  expect(await table.locator("thead th").allTextContents()).toEqual(["#", "customer text", "amount numeric"]);
  expect((await table.locator("tbody tr").first().locator("td").allTextContents()).slice(2)).toEqual(["500"]);
  expect(await page.locator(".ask svg rect.mark").count()).toBe(3);
  await screenshot(page, "ask");
  expect(await seriousViolations(page)).toEqual([]);
  expect(await page.title()).not.toBe("pwned");
  expect(await page.locator("main img").count()).toBe(0);

  // A follow-up continues the same conversation, which is the person's own.
  model.state.turns = [{ text: "Yes, 500 dollars." }];
  await page.getByLabel("Your question").fill("Is that in dollars?");
  await page.getByRole("button", { name: "Ask" }).click();
  await page.getByText("Yes, 500 dollars.").waitFor();
  const { rows } = await db.admin.query("select c.owner, c.channel, count(m.*)::int as messages from sextant.ask_conversations c join sextant.ask_messages m on m.conversation_id = c.id group by 1, 2");
  expect(rows).toEqual([{ owner: "cal@acme.test", channel: "console", messages: 4 }]);
});

test("the console's ask needs the session's CSRF token and the console's own origin", async () => {
  const cookie = (await page.context().cookies()).find((c) => c.name === "sx_console")!;
  const post = (headers: Record<string, string>) =>
    fetch(`${base}/console/api/ask`, { method: "POST", headers: { "content-type": "application/json", cookie: `sx_console=${cookie.value}`, ...headers }, body: '{"question":"hi"}' });
  const noToken = await post({ origin: base });
  expect(noToken.status).toBe(403);
  const otherOrigin = await post({ origin: "https://evil.example", "x-csrf-token": "x" });
  expect(otherOrigin.status).toBe(403);
  const anonymous = await fetch(`${base}/console/api/ask`, { method: "POST", headers: { "content-type": "application/json", origin: base }, body: '{"question":"hi"}' });
  expect(anonymous.status).toBe(401);
  expect(model.state.requests.length).toBe(4); // only the two questions above reached the model
});
