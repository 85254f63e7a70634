import { beforeAll, expect, test } from "vitest";
import { createToken } from "../helpers/db.ts";
import { postMcp } from "../helpers/mcpClient.ts";
import { useTestServer } from "../helpers/setup.ts";

// The headers and names /mcp reads now: tool groups (header and ?groups=), the 2026 routing
// headers (Mcp-Method, Mcp-Name, MCP-Protocol-Version), and Origins. Each hostile value gets a
// clear 4xx (or is ignored), never a 500, a stack, or a tool list it did not ask for.

const { db, server } = useTestServer();
let token: string;
beforeAll(async () => {
  token = await createToken(db, "acme", "hostile-headers");
});

const list = { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} };
const post = (body: unknown, headers: Record<string, string>, query = "") =>
  postMcp(`${server.url}/mcp${query}`, token, body, { "mcp-protocol-version": "2025-06-18", ...headers });

test.each([
  ["an unknown group", "secrets", /unknown tool group \\"secrets\\"/],
  ["SQL in a group name", "catalog';drop table x;--", /unknown tool group/],
  ["a path", "../../etc/passwd", /unknown tool group/],
  ["a long list", "catalog,".repeat(40), /up to 200 characters/],
  ["a quote and backslash", 'catalog,"\\', /unknown tool group/],
  ["non-ASCII", "каталог", /unknown tool group/],
])("tool groups header: %s is a 400 with the known names", async (_what, value, message) => {
  const res = await post(list, { "sextant-tool-groups": encodeURI(value) === value ? value : encodeURIComponent(value) });
  expect(res.status).toBe(400);
  const text = await res.text();
  expect(text).toMatch(message);
  expect(text).not.toMatch(/at .*\.ts|stack/);
});

test("?groups= is checked the same way; repeated and oddly spaced names are fine", async () => {
  const bad = await post(list, {}, "?groups=catalog&groups=query");
  expect(bad.status).toBe(400);
  await bad.text();
  const ok = await post(list, { "sextant-tool-groups": " Query , query,QUERY " });
  expect(ok.status).toBe(200);
  const text = await ok.text();
  expect(text).toContain('"explain_query"');
  expect(text).not.toContain('"whoami"');
});

test("2026 routing headers that disagree with the body, or are absurd, are refused before any tool runs", async () => {
  const modern = (method: string, params: Record<string, unknown>) => ({
    jsonrpc: "2.0", id: 7, method,
    params: { ...params, _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": { name: "h", version: "1" }, "io.modelcontextprotocol/clientCapabilities": {} } },
  });
  const call = modern("tools/call", { name: "whoami", arguments: {} });
  const cases: Record<string, string>[] = [
    { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "save_learning" },
    { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list", "mcp-name": "whoami" },
    { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "x".repeat(5000) },
    { "mcp-protocol-version": "1999-01-01", "mcp-method": "tools/call", "mcp-name": "whoami" },
  ];
  for (const headers of cases) {
    const res = await post(call, headers);
    expect(res.status, JSON.stringify(headers).slice(0, 120)).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await res.text()).not.toContain("acme"); // whoami never ran
  }
  const audited = await db.admin.query("select count(*)::int as n from sextant.audit_events where principal = 'hostile-headers' and tool = 'whoami'");
  expect(audited.rows[0].n).toBe(0);
});

test("Origins that only look like loopback or Sextant are refused", async () => {
  for (const origin of ["http://localhost.evil.example", "http://127.0.0.1.evil.example:4000", "null", "file://", "http://localhost:4000/path", "javascript:alert(1)", "http://[::1].evil"]) {
    const res = await post(list, { origin });
    expect(res.status, origin).toBe(403);
    await res.text();
  }
});

test("a Host header that carries a query ('host:port?groups=query') changes nothing the server reads", async () => {
  const { request } = await import("node:http");
  const port = new URL(server.url).port;
  const raw = (host: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const body = JSON.stringify(list);
      const req = request({ host: "127.0.0.1", port, path: "/mcp", method: "POST", setHost: false, headers: {
        host, authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18", "content-length": Buffer.byteLength(body) } }, (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on("error", reject);
      req.end(body);
    });
  const plain = await raw(`127.0.0.1:${port}`);
  expect(plain.status).toBe(200);
  expect(plain.body).toContain('"whoami"');
  for (const host of [`127.0.0.1:${port}?groups=query`, `127.0.0.1:${port}/x?groups=query&apps=1`, `127.0.0.1:${port}#?groups=query`]) {
    const res = await raw(host);
    expect(res.status, host).toBe(400);
    expect(res.body, host).toContain("the Host header must be a host name and port");
  }
});

test("an absolute-form request target (as proxies send) is answered as its path on the direct and the SDK path; another host's is a 400", async () => {
  const { request } = await import("node:http");
  const { directCallsAnswered } = await import("../../src/mcp/directCall.ts");
  const port = new URL(server.url).port;
  const raw = (target: string, body?: unknown) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const text = body === undefined ? "" : JSON.stringify(body);
      const req = request({ host: "127.0.0.1", port, path: target, method: body === undefined ? "GET" : "POST", headers: {
        authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18", "content-length": Buffer.byteLength(text) } }, (res) => {
        let answer = "";
        res.on("data", (d) => (answer += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: answer }));
      });
      req.on("error", reject);
      req.end(text);
    });
  const absolute = `http://127.0.0.1:${port}/mcp`;
  const call = (extra: Record<string, unknown> = {}) => ({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "query", arguments: { sql: "select 7 as seven" }, ...extra } });
  // The direct path (a plain call) and the SDK's (a call with _meta, a list): 200 and the same answers as the origin form.
  for (const [body, direct] of [[call(), 1], [call({ _meta: {} }), 0], [list, 0]] as const) {
    const before = directCallsAnswered();
    const viaAbsolute = await raw(absolute, body);
    expect(directCallsAnswered() - before, JSON.stringify(body)).toBe(direct);
    const viaPath = await raw("/mcp", body);
    expect(viaAbsolute.status, JSON.stringify(body)).toBe(200);
    const masked = (t: string) => t.replace(/DATA-[0-9a-f]{12}/g, "DATA-x").replace(/ in \d+(\.\d+)? ms/g, " in N ms").replace(/"elapsed_ms":\d+(\.\d+)?/g, "");
    expect(masked(viaAbsolute.body)).toBe(masked(viaPath.body));
  }
  expect(JSON.parse((await raw(absolute, call())).body).result).toMatchObject({ content: [{ text: expect.stringMatching(/^1 rows? /) }], structuredContent: { row_count: 1 } });
  // The query of the absolute target is read: ?groups=query narrows the list.
  const narrowed = await raw(`${absolute}?groups=query`, list);
  expect(narrowed.status).toBe(200);
  expect(narrowed.body).toContain('"explain_query"');
  expect(narrowed.body).not.toContain('"whoami"');
  // A GET (the SDK's node handler) answers as the origin form does.
  expect((await raw(absolute)).status).toBe((await raw("/mcp")).status);
  // Another host than the Host header, credentials in the URL, or another scheme: a clear 400, never a 500.
  for (const target of [`http://evil.example:${port}/mcp`, `http://127.0.0.1:1/mcp`, `http://u:p@127.0.0.1:${port}/mcp`, `ftp://127.0.0.1:${port}/mcp`]) {
    const res = await raw(target, list);
    expect(res.status, target).toBe(400);
    expect(res.body, target).toContain("an absolute request target must be an http(s) URL of the Host header's host");
  }
});
