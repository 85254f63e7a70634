import http from "node:http";
import path from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { Client as Client2025 } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport as HttpTransport2025 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { build } from "esbuild";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { projectRoot } from "../../src/db/paths.ts";
import { APP_MIME_TYPE, APPS_EXTENSION } from "../../src/mcp/apps/index.ts";
import { SEXTANT_BIN } from "../helpers/cli.ts";
import type { ConsoleStack } from "../helpers/console.ts";
import { createToken, type TestDatabase } from "../helpers/db.ts";
import { screenshot } from "./browser.ts";

/**
 * MCP Apps: hosts that declare the extension get a UI resource on `query` and
 * `get_model_details`; others get today's listing and results. The app is then rendered in
 * Chromium inside a host page that uses the ext-apps host bridge, fed a real `query` result.
 * Runs on the console tests' stack (console.test.ts calls it: one database, server and
 * Chromium for both), whose tenant acme has the fivetran-recurly dbt project loaded.
 */
export function mcpAppsSuite(stack: () => ConsoleStack): void {
  describe("MCP Apps", () => {
    let db: TestDatabase;
    let server: ConsoleStack["server"];
    let token: string;
    let browser: Browser;
    let host: http.Server;

    async function connect(apps: boolean): Promise<Client> {
      const client = new Client(
        { name: apps ? "apps-host" : "plain-host", version: "1.0.0" },
        { capabilities: apps ? { extensions: { [APPS_EXTENSION]: { mimeTypes: [APP_MIME_TYPE] } } } : {}, versionNegotiation: { mode: { pin: "2026-07-28" } } } as never,
      );
      await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      return client;
    }

    beforeAll(async () => {
      ({ db, server, browser } = stack());
      token = await createToken(db, "acme", "app-tester", "analyst");
      const bundle = await build({ entryPoints: [path.join(projectRoot, "test/console/mcpHost.ts")], bundle: true, format: "esm", write: false, logLevel: "warning" });
      const js = bundle.outputFiles[0]!.text;
      host = http.createServer((req, res) => {
        if (req.url === "/host.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(js);
        res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><html lang="en"><title>Host</title><h1>Test host</h1><script type="module" src="/host.js"></script>');
      });
      await new Promise<void>((r) => host.listen(0, "127.0.0.1", () => r()));
    }, 120_000);
    afterAll(async () => {
      await new Promise((r) => host?.close(r));
    });

    test("only a host that declares MCP Apps sees the UI resources on query and get_model_details; results are unchanged", async () => {
      const withApps = await connect(true);
      const plain = await connect(false);
      const listed = (await withApps.listTools()).tools;
      const uiOf = (tools: typeof listed, name: string) => (tools.find((t) => t.name === name)?._meta as { ui?: { resourceUri?: string } } | undefined)?.ui;
      expect(uiOf(listed, "query")).toEqual({ resourceUri: "ui://sextant/query.html" });
      expect(uiOf(listed, "get_model_details")).toEqual({ resourceUri: "ui://sextant/lineage.html" });
      expect(uiOf(listed, "list_schemas")).toBeUndefined();
      const plainTools = (await plain.listTools()).tools;
      expect(uiOf(plainTools, "query")).toBeUndefined();
      // The listing a plain host pays for grows by two empty _meta objects at most.
      expect(JSON.stringify(listed).length - JSON.stringify(plainTools).length).toBeLessThan(120);
      const args = { name: "query", arguments: { sql: "select 1 as n" } };
      const a = await withApps.callTool(args);
      const b = await plain.callTool(args);
      expect({ ...(a.structuredContent as object), elapsed_ms: 0 }).toEqual({ ...(b.structuredContent as object), elapsed_ms: 0 });
      const read = await withApps.readResource({ uri: "ui://sextant/query.html" });
      expect(read.contents[0]).toMatchObject({ mimeType: APP_MIME_TYPE });
      expect((read.contents[0] as { text: string }).text).toMatch(/^<!doctype html>/);
      await withApps.close();
      await plain.close();
    });

    /** A 2025-era client (SDK 1.x: initialize, then requests), declaring MCP Apps in initialize or not. */
    function client2025(apps: boolean): Client2025 {
      return new Client2025({ name: apps ? "apps-host-2025" : "plain-host-2025", version: "1.0.0" },
        { capabilities: apps ? { extensions: { [APPS_EXTENSION]: { mimeTypes: [APP_MIME_TYPE] } } } : {} } as never);
    }
    const uiOf2025 = async (c: Client2025, name: string) =>
      ((await c.listTools()).tools.find((t) => t.name === name)?._meta as { ui?: { resourceUri?: string } } | undefined)?.ui;

    test("2025-era hosts: over stdio the declaration in initialize decides; over the stateless /mcp it cannot reach later requests, so no app there (results unchanged)", { timeout: 90_000 }, async () => {
      const stdio = async (apps: boolean) => {
        const c = client2025(apps);
        await c.connect(new StdioClientTransport({
          command: process.execPath, args: [SEXTANT_BIN, "mcp", "--tenant", "acme", "--role", "analyst"],
          env: { PATH: process.env.PATH ?? "", DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn" }, stderr: "pipe",
        }));
        return c;
      };
      const [withApps, plain] = await Promise.all([stdio(true), stdio(false)]);
      expect(await uiOf2025(withApps, "query")).toEqual({ resourceUri: "ui://sextant/query.html" });
      expect(await uiOf2025(withApps, "get_model_details")).toEqual({ resourceUri: "ui://sextant/lineage.html" });
      expect(await uiOf2025(plain, "query")).toBeUndefined();
      const read = await withApps.readResource({ uri: "ui://sextant/lineage.html" });
      expect(read.contents[0]).toMatchObject({ mimeType: APP_MIME_TYPE });
      const result = await withApps.callTool({ name: "query", arguments: { sql: "select 1 as n" } });
      expect(result.structuredContent).toMatchObject({ columns: [{ name: "n" }], rows: [[1]] });
      await Promise.all([withApps.close(), plain.close()]);

      const http = client2025(true);
      await http.connect(new HttpTransport2025(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      expect(await uiOf2025(http, "query")).toBeUndefined();
      expect((await http.readResource({ uri: "ui://sextant/query.html" })).contents[0]).toMatchObject({ mimeType: APP_MIME_TYPE });
      await http.close();
    });

    test("2025-era hosts over HTTP opt in with ?apps=1 or the Sextant-Apps header; without it tools/list is unchanged and within its budget", { timeout: 60_000 }, async () => {
      const connect2025 = async (url: string, headers: Record<string, string> = {}, apps = false) => {
        const c = client2025(apps);
        await c.connect(new HttpTransport2025(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } } }));
        return c;
      };
      const byUrl = await connect2025(`${server.url}/mcp?apps=1`);
      const byHeader = await connect2025(`${server.url}/mcp`, { "Sextant-Apps": "1" });
      const plain = await connect2025(`${server.url}/mcp`, {}, true);
      const off = await connect2025(`${server.url}/mcp?apps=0`, { "Sextant-Apps": "no" });
      for (const c of [byUrl, byHeader]) {
        expect(await uiOf2025(c, "query")).toEqual({ resourceUri: "ui://sextant/query.html" });
        expect(await uiOf2025(c, "get_model_details")).toEqual({ resourceUri: "ui://sextant/lineage.html" });
        expect(await uiOf2025(c, "list_schemas")).toBeUndefined();
        const read = await c.readResource({ uri: "ui://sextant/query.html" });
        expect(read.contents[0]).toMatchObject({ mimeType: APP_MIME_TYPE, text: expect.stringMatching(/^<!doctype html>/) });
      }
      const plainTools = (await plain.listTools()).tools;
      const offTools = (await off.listTools()).tools;
      const optedTools = (await byUrl.listTools()).tools;
      for (const tools of [plainTools, offTools]) {
        expect(tools.find((t) => t.name === "query")?._meta).toEqual({});
        // The listing of a client that did not opt in: as before, within about 2,500 tokens.
        expect(JSON.stringify(tools).length).toBeLessThanOrEqual(10_000);
      }
      expect(optedTools.map((t) => t.name)).toEqual(plainTools.map((t) => t.name));
      // Results are the same whether or not the client opted in.
      const args = { name: "query", arguments: { sql: "select 1 as n" } };
      const a = await byHeader.callTool(args);
      const b = await plain.callTool(args);
      expect({ ...(a.structuredContent as object), elapsed_ms: 0 }).toEqual({ ...(b.structuredContent as object), elapsed_ms: 0 });
      expect(a.structuredContent).toMatchObject({ columns: [{ name: "n" }], rows: [[1]] });
      await Promise.all([byUrl.close(), byHeader.close(), plain.close(), off.close()]);
    });

    test("the query app renders a real result in Chromium through the ext-apps host bridge, pages through the tool, and charts", { timeout: 60_000 }, async () => {
      const client = await connect(true);
      const html = (await client.readResource({ uri: "ui://sextant/query.html" })).contents[0] as { text: string };
      const input = { sql: "select g as n, g * 3 as triple, '<b>x</b>' as tag from generate_series(1, 25) g", max_rows: 10 };
      const result = await client.callTool({ name: "query", arguments: input });
      expect(result.isError).toBeFalsy();
      const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      await page.exposeFunction("sextantCallTool", async (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }));
      await page.goto(`http://127.0.0.1:${(host.address() as { port: number }).port}/`);
      await page.evaluate(({ html, input, result }) => window.showApp(html, input, result), { html: html.text, input, result });
      const app = page.frameLocator("iframe[title='Sextant app']");
      await app.getByRole("status").filter({ hasText: "Rows 1–10 (more rows exist)" }).waitFor();
      expect(await app.locator("svg.chart .mark, svg.chart polyline").count()).toBeGreaterThan(0);
      expect(await app.getByRole("region", { name: "Query result" }).textContent()).toContain("<b>x</b>");
      expect(await app.locator("b").count()).toBe(0);
      await app.getByRole("button", { name: "Next page" }).click();
      await app.getByRole("status").filter({ hasText: "Rows 11–20" }).waitFor();
      expect(await page.evaluate(() => window.appCalls)).toEqual(["query"]);
      expect(await app.locator("tbody tr").first().textContent()).toContain("11");
      // Rows are arrays in column order on the wire: each value under its column (#, n, triple, tag).
      expect(await app.locator("tbody tr").first().locator("td").allTextContents()).toEqual(["11", "11", "33", "<b>x</b>"]);
      // A bar per row: y is n (the first numeric column), by tag.
      expect(await app.locator("svg.chart rect.mark").count()).toBe(10);
      await screenshot(page, "mcp-app-query");
      await page.close();
      await client.close();
    });

    test("the lineage app draws get_model_details' lineage and opens a node through the host", { timeout: 60_000 }, async () => {
      const client = await connect(true);
      const html = (await client.readResource({ uri: "ui://sextant/lineage.html" })).contents[0] as { text: string };
      const input = { model: "recurly__account_overview" };
      const result = await client.callTool({ name: "get_model_details", arguments: input });
      const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      await page.exposeFunction("sextantCallTool", async (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }));
      await page.goto(`http://127.0.0.1:${(host.address() as { port: number }).port}/`);
      await page.evaluate(({ html, input, result }) => window.showApp(html, input, result), { html: html.text, input, result });
      const app = page.frameLocator("iframe[title='Sextant app']");
      await app.getByRole("heading", { name: "recurly__account_overview" }).waitFor();
      expect(await app.locator(".lineage svg g.node").count()).toBeGreaterThan(2);
      await screenshot(page, "mcp-app-lineage");
      const first = app.getByRole("list", { name: "Models in the lineage" }).getByRole("button").first();
      const name = (await first.textContent())!;
      await first.click();
      await app.getByRole("heading", { name, exact: true }).waitFor();
      expect(await page.evaluate(() => window.appCalls)).toEqual(["get_model_details"]);
      await page.close();
      await client.close();
    });
  });
}
