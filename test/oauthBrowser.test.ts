import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { hashPassword } from "../src/oauth/password.ts";
import { callOk } from "./helpers/mcpClient.ts";
import { pkce } from "./helpers/oauth.ts";
import { freePort } from "./helpers/ports.ts";
import { useTestServer } from "./helpers/setup.ts";

// Debian's chromium (installed by .ci/run); Playwright's own browser download is not used.
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = process.env.SEXTANT_SCREENSHOT_DIR ?? path.join(os.tmpdir(), "sextant-screenshots");

let base: string;
const { db } = useTestServer(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  return { PORT: String(port), SEXTANT_PUBLIC_URL: base };
});
let browser: Browser;
let callback: http.Server;
let callbackUrl: string;
const received: URL[] = [];

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  await db.admin.query("select * from sextant_private.upsert_user('pat@acme.test', $1, 'Pat', 'acme', 'analyst')", [await hashPassword("a long enough password")]);
  await db.admin.query("select * from sextant_private.upsert_user('pat@acme.test', null, null, 'globex', 'viewer')");
  // The app's redirect URI: a local page that records the code.
  callback = http.createServer((req, res) => {
    received.push(new URL(req.url!, "http://x"));
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>App</title><h1>Connected</h1>");
  });
  await new Promise<void>((r) => callback.listen(0, "127.0.0.1", () => r()));
  callbackUrl = `http://127.0.0.1:${(callback.address() as { port: number }).port}/callback`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  fs.mkdirSync(SHOTS, { recursive: true });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await new Promise((r) => callback?.close(r));
});

test("a person signs in and consents in headless Chromium; the app gets a code, then tokens, then a tool call", { timeout: 60_000 }, async () => {
  const reg = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "Browser Test App", redirect_uris: [callbackUrl], token_endpoint_auth_method: "none" }),
  });
  const { client_id } = (await reg.json()) as { client_id: string };
  const { verifier, challenge } = pkce();
  const authorize = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries({ response_type: "code", client_id, redirect_uri: callbackUrl, code_challenge: challenge, code_challenge_method: "S256", state: "s-42" })) {
    authorize.searchParams.set(k, v);
  }

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(authorize.href);
  expect(await page.title()).toBe("Sign in · Sextant");
  await expect(page.getByRole("heading", { name: "Sign in to Sextant" }).isVisible()).resolves.toBe(true);
  expect(await page.textContent("main")).toContain("Browser Test App");
  // Accessible: the fields are found by their labels.
  await page.getByLabel("E-mail").fill("pat@acme.test");
  await page.getByLabel("Password").fill("wrong password!!");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert").textContent()).resolves.toMatch(/not right/);
  await page.getByLabel("Password").fill("a long enough password");
  const login = await page.screenshot({ path: path.join(SHOTS, "oauth-login.png"), fullPage: true });
  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(page.getByRole("heading", { name: "Allow Browser Test App?" }).isVisible()).resolves.toBe(true);
  expect(await page.textContent("main")).toContain("127.0.0.1"); // the redirect host is shown
  await page.getByLabel("Tenant").selectOption("acme");
  const consent = await page.screenshot({ path: path.join(SHOTS, "oauth-consent.png"), fullPage: true });
  await page.getByRole("button", { name: "Allow" }).click();
  await page.waitForURL((u) => u.pathname === "/callback");
  expect(await page.textContent("h1")).toBe("Connected");
  await context.close();

  // The screenshots are real renderings: PNGs of the page's size, with content.
  for (const png of [login, consent]) {
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(png.readUInt32BE(16)).toBeGreaterThan(300); // width
    expect(png.length).toBeGreaterThan(8000);
  }

  const back = received.filter((u) => u.pathname === "/callback").at(-1)!;
  expect(back.searchParams.get("state")).toBe("s-42");
  const t = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: back.searchParams.get("code")!, code_verifier: verifier, client_id, redirect_uri: callbackUrl }).toString(),
  });
  const tokens = (await t.json()) as { access_token: string };
  const client = new Client({ name: "t", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } } }));
  expect(await callOk(client, "whoami")).toMatchObject({ tenant: "acme", access_level: "analyst", principal: "pat@acme.test", auth_method: "oauth" });
  await client.close();
});
