import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { classifyInboundRequest } from "@modelcontextprotocol/server";
import { describe, expect, test } from "vitest";
import { directCallsAnswered } from "../../src/mcp/directCall.ts";
import { createToken, type TestDatabase } from "../helpers/db.ts";
import { eventually } from "../helpers/graphql.ts";
import { callRows, connectHttp, postMcp } from "../helpers/mcpClient.ts";
import { useServer, useTestServer } from "../helpers/setup.ts";

// The same database behind two servers: the direct path on (the default) and off.
const { db, server: direct } = useTestServer();
const sdk = useServer(db, { SEXTANT_MCP_DIRECT_CALLS: "0" });

const V2025 = { "mcp-protocol-version": "2025-06-18" };

async function groupedToken(db: TestDatabase, name: string, groups: string[]): Promise<string> {
  const { rows } = await db.admin.query("select sextant_private.create_api_token('acme', $1, 'analyst', null, $2) as token", [name, groups]);
  return rows[0].token;
}

/** An answer without what differs per call: the untrusted-data fence's nonce, the time taken. */
const masked = (text: string) =>
  text.replace(/DATA-[0-9a-f]{12}/g, "DATA-x").replace(/ in \d+(\.\d+)? ms/g, " in N ms").replace(/"elapsed_ms":\d+(\.\d+)?/g, '"elapsed_ms":N');

/** Whether an answer is the result of a tool that ran (not the SDK's refusal before it). */
const ran = (text: string) => {
  const m = JSON.parse(text) as { result?: { content?: { text?: string }[] } };
  return m.result !== undefined && !/^(Input validation error|Invalid arguments for tool|Tool \S+ not found|MCP error)/.test(m.result.content?.[0]?.text ?? "");
};

/** One raw JSON-RPC POST; what came back, and whether the direct path answered it. */
async function send(url: string, token: string, body: unknown, headers: Record<string, string> = V2025) {
  const before = directCallsAnswered();
  const res = await postMcp(`${url}/mcp`, token, body, headers);
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text(), direct: directCallsAnswered() - before };
}

const call = (id: unknown, name: string, args?: unknown, extra: Record<string, unknown> = {}) =>
  ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, ...(args === undefined ? {} : { arguments: args }), ...extra } });

/** Calls both paths must answer alike: [what, body, headers, whether the direct path takes it]. */
const CASES: [string, unknown, Record<string, string>, boolean][] = [
  ["a point lookup", call(1, "query", { sql: "select 1 as one, 'a' as letter" }), V2025, true],
  // Written as latin1 when all ASCII (wireEncoding): anything else must still arrive as UTF-8.
  ["non-ASCII text: Latin-1, other BMP, astral", call(31, "query", { sql: "select 'h\u00e9llo \u00ff \u2713 \u{1F600}' as t" }), V2025, true],
  ["rows, truncated", call(2, "query", { sql: "select g, 'x' || g as s, g * 1.5 as f, null::int as n from generate_series(1, 40) g", max_rows: 7 }), V2025, true],
  ["a catalog tool", call(3, "list_schemas", {}), V2025, true],
  ["a tool without arguments", call(4, "whoami"), V2025, true],
  ["a string id, protocol 2025-11-25", call("abc-1", "query", { sql: "select now() > '2000-01-01' as later" }), { "mcp-protocol-version": "2025-11-25" }, true],
  ["MCP Apps opted in", call(5, "query", { sql: "select 2 as two" }), { ...V2025, "sextant-apps": "1" }, true],
  ["narrowed by a groups header", call(6, "query", { sql: "select 3 as three" }), { ...V2025, "sextant-tool-groups": "query" }, true],
  ["a SQL error (isError)", call(7, "query", { sql: "select 1/0" }), V2025, true],
  ["hostile: two statements", call(8, "query", { sql: "select 1; select 2" }), V2025, true],
  ["hostile: another tenant's schema", call(9, "query", { sql: "select * from t_globex_work.orders" }), V2025, true],
  ["hostile: set_config of the role", call(10, "query", { sql: "select set_config('role', 'sextant_owner', false)" }), V2025, true],
  ["hostile: a NUL character (SX400)", call(11, "query", { sql: "select 'a\u0000b'" }), V2025, true],
  // JSON.parse makes "__proto__" an own key, as the server's body parser does.
  ["hostile: a __proto__ key in the arguments", call(20, "query", JSON.parse('{"sql": "select g from generate_series(1, 3) g", "__proto__": {"row_offset": 1, "max_rows": 1}}')), V2025, true],
  // The SDK's maxToolInputElements (src/mcp/server.ts): array elements and object members together.
  ["arguments at the element bound (2 keys + 9,998 elements)", call(22, "query", { sql: "select 1 as one", pad: Array(9998).fill(0) }), V2025, true],
  ["hostile: one element over the bound", call(23, "query", { sql: "select 1 as one", pad: Array(9999).fill(0) }), V2025, false],
  ["a tool outside the groups asked for", call(12, "list_schemas", {}), { ...V2025, "sextant-tool-groups": "query" }, false],
  ["an unknown tool", call(13, "no_such_tool", {}), V2025, false],
  ["arguments the schema refuses", call(14, "query", { sql: 5 }), V2025, false],
  ["missing arguments", call(15, "query", {}), V2025, false],
  ["a fractional id", call(1.5, "query", { sql: "select 1" }), V2025, false],
  ["a params key the direct path does not know", call(16, "query", { sql: "select 1" }, { task: { ttl: 1000 } }), V2025, false],
  ["no protocol version header", call(17, "query", { sql: "select 1" }), {}, false],
  ["an unsupported protocol version", call(18, "query", { sql: "select 1" }), { "mcp-protocol-version": "1999-01-01" }, false],
  ["an Accept without event streams", call(19, "query", { sql: "select 1" }), { ...V2025, accept: "application/json" }, false],
  ["a jsonrpc version other than 2.0", { ...call(21, "query", { sql: "select 1" }), jsonrpc: "1.0" }, V2025, false],
];

describe("the direct path of /mcp (plain 2025-era tools/call)", () => {
  test("answers byte for byte what the SDK answers, and takes only the calls it should", async () => {
    const token = await createToken(db, "acme", "direct-bytes", "analyst");
    for (const [what, body, headers, takes] of CASES) {
      const viaSdk = await send(sdk.url, token, body, headers);
      const viaDirect = await send(direct.url, token, body, headers);
      expect(viaSdk.direct, what).toBe(0);
      expect(viaDirect.direct, what).toBe(takes ? 1 : 0);
      // What the direct path takes, the SDK's own entry would route to its 2025-era serving.
      if (takes) expect(classifyInboundRequest({ httpMethod: "POST", protocolVersionHeader: headers["mcp-protocol-version"], body } as never).kind, what).toBe("legacy");
      expect({ status: viaDirect.status, type: viaDirect.type, text: masked(viaDirect.text) }, what).toEqual({ status: viaSdk.status, type: viaSdk.type, text: masked(viaSdk.text) });
    }
    // The answers are what they claim: results, tool errors with SX codes, the SDK's own errors.
    const answer = async (what: string) => {
      const [, body, headers] = CASES.find(([w]) => w === what)!;
      return (await send(direct.url, token, body, headers)).text;
    };
    expect(JSON.parse(await answer("non-ASCII text: Latin-1, other BMP, astral")).result.structuredContent.rows).toEqual([["h\u00e9llo \u00ff \u2713 \u{1F600}"]]);
    expect(JSON.parse(await answer("a point lookup"))).toMatchObject({ jsonrpc: "2.0", id: 1, result: { structuredContent: { columns: [{ name: "one" }, { name: "letter" }], rows: [[1, "a"]] } } });
    expect(JSON.parse(await answer("a SQL error (isError)")).result).toMatchObject({ isError: true, content: [{ text: expect.stringMatching(/division by zero/) }] });
    expect(JSON.parse(await answer("hostile: two statements")).result.isError).toBe(true);
    expect(JSON.parse(await answer("hostile: a NUL character (SX400)")).result.content[0].text).toMatch(/^error SX400: arguments must not contain NUL/);
    expect(await answer("an unknown tool")).toMatch(/no_such_tool/);
    expect(JSON.parse(await answer("arguments at the element bound (2 keys + 9,998 elements)")).result.structuredContent).toMatchObject({ row_count: 1 });
    expect(JSON.parse(await answer("hostile: one element over the bound")).result).toEqual({
      content: [{ type: "text", text: "Invalid arguments for tool query: arguments contain more than the maximum of 10000 elements" }], isError: true });
    // An own "__proto__" key is only a key: the arguments keep no row_offset or max_rows from it.
    expect(JSON.parse(await answer("hostile: a __proto__ key in the arguments")).result.structuredContent).toMatchObject({ columns: [{ name: "g" }], rows: [[1], [2], [3]], row_count: 3 });
  });

  test("a token's tool groups hold on the direct path: a tool outside them is the SDK's 'not found'", async () => {
    const token = await groupedToken(db, "direct-catalog-only", ["catalog"]);
    const denied = call(1, "query", { sql: "select 1" });
    const viaSdk = await send(sdk.url, token, denied);
    const viaDirect = await send(direct.url, token, denied);
    expect(viaDirect.direct).toBe(0);
    expect(masked(viaDirect.text)).toBe(masked(viaSdk.text));
    expect(viaDirect.text).toMatch(/query/);
    expect(JSON.parse(viaDirect.text).result?.isError ?? JSON.parse(viaDirect.text).error).toBeTruthy();
    // A tool of its group is taken directly, and answers as the SDK does.
    const allowed = call(2, "list_schemas", {});
    const okSdk = await send(sdk.url, token, allowed);
    const okDirect = await send(direct.url, token, allowed);
    expect(okDirect.direct).toBe(1);
    expect(masked(okDirect.text)).toBe(masked(okSdk.text));
  });

  test("real SDK clients: a 2025-era client's calls take the direct path, a 2026-07-28 client's do not", async () => {
    const token = await createToken(db, "acme", "direct-clients", "analyst");
    const { client } = await connectHttp(direct.url, token);
    const before = directCallsAnswered();
    expect(await callRows(client, "query", { sql: "select 42 as answer" })).toMatchObject({ rows: [{ answer: 42 }] });
    expect(directCallsAnswered() - before).toBe(1);
    await client.close();
    const modern = new ClientV2({ name: "direct-test-v2", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await modern.connect(new TransportV2(new URL(`${direct.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    const modernBefore = directCallsAnswered();
    const result = await modern.callTool({ name: "query", arguments: { sql: "select 43 as answer" } });
    expect(result.structuredContent).toMatchObject({ columns: [{ name: "answer" }], rows: [[43]] });
    expect(directCallsAnswered()).toBe(modernBefore);
    await modern.close();
  });

  test("audit rows and rate-limit counts are the same on both paths", async () => {
    const viaDirect = await createToken(db, "acme", "direct-audit-a", "analyst");
    const viaSdk = await createToken(db, "acme", "direct-audit-b", "analyst");
    let runs = 0;
    for (const [, body, headers] of CASES) {
      const answer = await send(direct.url, viaDirect, body, headers);
      await send(sdk.url, viaSdk, body, headers);
      if (answer.status === 200 && ran(answer.text)) runs++;
    }
    const audit = (principal: string) =>
      db.admin.query(
        `select tool, sql, row_count, outcome, error_code, error_message, database_role, auth_method
           from sextant.audit_events where tenant_slug = 'acme' and principal = $1 order by id`,
        [principal],
      ).then((r) => r.rows);
    expect(runs).toBeGreaterThan(CASES.filter(([, , , takes]) => takes).length - 1);
    const a = await eventually(async () => ((await audit("direct-audit-a")).length >= runs ? audit("direct-audit-a") : undefined), 30_000);
    const b = await eventually(async () => ((await audit("direct-audit-b")).length >= runs ? audit("direct-audit-b") : undefined), 30_000);
    expect(a).toHaveLength(runs);
    if (!a) throw new Error("no audit rows");
    expect(a).toEqual(b);
    expect(new Set(a.map((r) => r.outcome))).toEqual(new Set(["ok", "refused"]));
    const hits = (principal: string) =>
      db.admin.query("select coalesce(sum(hits), 0)::int as n from sextant_private.rate_buckets where bucket like $1", [`p:acme:${principal}:hour`]).then((r) => r.rows[0].n);
    expect(await hits("direct-audit-a")).toBeGreaterThan(0);
    expect(await hits("direct-audit-a")).toBe(await hits("direct-audit-b"));
  });

  test("a caller over its per-minute limit is refused alike on both paths (SX429)", async () => {
    // Not in the last seconds of a minute: both calls of a pair must fall in the same window.
    while (new Date().getUTCSeconds() > 50) await new Promise((r) => setTimeout(r, 500));
    await db.admin.query("update sextant.tenants set rate_per_minute = 1 where slug = 'globex'");
    try {
      const refused: string[] = [];
      for (const [url, name] of [[direct.url, "limited-a"], [sdk.url, "limited-b"]] as const) {
        const token = await createToken(db, "globex", name, "analyst");
        expect(JSON.parse((await send(url, token, call(1, "whoami"))).text).result.isError).toBeUndefined();
        refused.push((await send(url, token, call(2, "query", { sql: "select 1" }))).text);
      }
      expect(refused[0]).toMatch(/SX429: rate limit reached/);
      expect(refused[0]!.replace(/Retry after \d+/, "")).toBe(refused[1]!.replace(/Retry after \d+/, ""));
    } finally {
      await db.admin.query("update sextant.tenants set rate_per_minute = 120 where slug = 'globex'");
    }
  });
});
