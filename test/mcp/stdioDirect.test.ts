import { spawn } from "node:child_process";
import { Client as ClientV2 } from "@modelcontextprotocol/client";
import { StdioClientTransport as StdioTransportV2 } from "@modelcontextprotocol/client/stdio";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SEXTANT_BIN } from "../helpers/cli.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { callOk, callRows, rowObjects } from "../helpers/mcpClient.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** What the direct path logs (at debug) per call it answers: how a test tells the paths apart. */
const DIRECT_LOG = "mcp stdio direct call";

const serverEnv = (direct: boolean) => ({
  PATH: process.env.PATH ?? "",
  DATABASE_URL: db.adminUrl,
  LOG_LEVEL: "debug",
  ...(direct ? {} : { SEXTANT_MCP_DIRECT_CALLS: "0" }),
});

/**
 * A real `sextant mcp --tenant acme --role analyst` spoken to line by line, as a client would:
 * `request` writes one JSON-RPC line and resolves with the raw line answering its id.
 */
function rawSession(direct: boolean) {
  const child = spawn(process.execPath, [SEXTANT_BIN, "mcp", "--tenant", "acme", "--role", "analyst"], { env: serverEnv(direct), stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiting = new Map<unknown, (line: string) => void>();
  const lines: string[] = [];
  child.stdout.on("data", (d) => {
    out += String(d);
    let i: number;
    while ((i = out.indexOf("\n")) !== -1) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      lines.push(line);
      const id = (JSON.parse(line) as { id?: unknown }).id; // every stdout line is whole JSON, or this throws
      waiting.get(JSON.stringify(id))?.(line);
    }
  });
  child.stderr.on("data", (d) => (err += String(d)));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const write = (message: unknown) => child.stdin.write(typeof message === "string" ? message : JSON.stringify(message) + "\n");
  const request = (message: { id: unknown } & Record<string, unknown>) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(message)}; stderr: ${err}`)), 30_000);
      waiting.set(JSON.stringify(message.id), (line) => {
        clearTimeout(timer);
        waiting.delete(JSON.stringify(message.id));
        resolve(line);
      });
      write(message);
    });
  return {
    child,
    write,
    request,
    lines,
    directCalls: () => err.split("\n").filter((l) => l.includes(DIRECT_LOG)).length,
    stderr: () => err,
    /** Opens a 2025-era session (initialize, then notifications/initialized), as SDK 1.x clients do. */
    async open(capabilities: Record<string, unknown> = {}) {
      const init = JSON.parse(await request({ jsonrpc: "2.0", id: "init", method: "initialize", params: { protocolVersion: "2025-06-18", capabilities, clientInfo: { name: "raw", version: "1" } } }));
      expect(init.result.protocolVersion).toBe("2025-06-18");
      write({ jsonrpc: "2.0", method: "notifications/initialized" });
    },
    /** Ends stdin (the client going away) and resolves with the exit code. */
    async end() {
      child.stdin.end();
      return exited;
    },
  };
}

/** An answer without what differs per call: the untrusted-data fence's nonce, the time taken. */
const masked = (text: string) =>
  text.replace(/DATA-[0-9a-f]{12}/g, "DATA-x").replace(/ in \d+(\.\d+)? ms/g, " in N ms").replace(/"elapsed_ms":\d+(\.\d+)?/g, '"elapsed_ms":0');

const call = (id: unknown, name: string, args?: unknown, extra: Record<string, unknown> = {}) =>
  ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, ...(args === undefined ? {} : { arguments: args }), ...extra } });

/** Calls both paths must answer alike: [what, message, whether the direct path takes it]. */
const CASES: [string, { id: unknown } & Record<string, unknown>, boolean][] = [
  ["a point lookup", call(1, "query", { sql: "select 1 as one, 'a' as letter" }), true],
  // Written as latin1 when all ASCII (wireEncoding): anything else must still arrive as UTF-8.
  ["non-ASCII text: Latin-1, other BMP, astral", call(31, "query", { sql: "select 'h\u00e9llo \u00ff \u2713 \u{1F600}' as t" }), true],
  ["rows, truncated", call(2, "query", { sql: "select g, 'x' || g as s, g * 1.5 as f, null::int as n from generate_series(1, 40) g", max_rows: 7 }), true],
  ["a catalog tool", call(3, "list_schemas", {}), true],
  ["a tool without arguments", call(4, "whoami"), true],
  ["a string id", call("abc-1", "query", { sql: "select now() > '2000-01-01' as later" }), true],
  ["a SQL error (isError)", call(7, "query", { sql: "select 1/0" }), true],
  ["hostile: two statements", call(8, "query", { sql: "select 1; select 2" }), true],
  ["hostile: another tenant's schema", call(9, "query", { sql: "select * from t_globex_work.orders" }), true],
  ["hostile: set_config of the role", call(10, "query", { sql: "select set_config('role', 'sextant_owner', false)" }), true],
  ["hostile: a NUL character (SX400)", call(11, "query", { sql: "select 'a\u0000b'" }), true],
  ["hostile: a __proto__ key in the arguments", call(20, "query", JSON.parse('{"sql": "select g from generate_series(1, 3) g", "__proto__": {"row_offset": 1, "max_rows": 1}}')), true],
  // The SDK's maxToolInputElements (src/mcp/server.ts): array elements and object members together.
  ["arguments at the element bound (2 keys + 9,998 elements)", call(22, "query", { sql: "select 1 as one", pad: Array(9998).fill(0) }), true],
  ["hostile: one element over the bound", call(23, "query", { sql: "select 1 as one", pad: Array(9999).fill(0) }), false],
  ["an unknown tool", call(13, "no_such_tool", {}), false],
  ["arguments the schema refuses", call(14, "query", { sql: 5 }), false],
  ["missing arguments", call(15, "query", {}), false],
  // The SDK's stdio transport drops these (its message schema refuses them) and answers nothing.
  ["a fractional id", call(1.5, "query", { sql: "select 1" }), false],
  ["a params key the direct path does not know", call(16, "query", { sql: "select 1" }, { task: { ttl: 1000 } }), false],
  ["a progress token", call(17, "query", { sql: "select 1" }, { _meta: { progressToken: "p1" } }), false],
  ["a top-level key the direct path does not know", { ...call(18, "query", { sql: "select 1" }), extra: true }, false],
];

/** What the SDK's stdio transport drops without an answer (it logs its schema's refusal). */
const UNANSWERED = new Set(["a fractional id", "a top-level key the direct path does not know"]);

/** The audit rows written since `after` (the paths' sessions run one after the other). */
const auditSince = (after: number) =>
  db.admin.query(
    `select tool, sql, row_count, outcome, error_code, error_message, database_role, auth_method, principal
       from sextant.audit_events where tenant_slug = 'acme' and id > $1 order by id`,
    [after],
  ).then((r) => r.rows);
const lastAuditId = () => db.admin.query("select coalesce(max(id), 0)::bigint as id from sextant.audit_events").then((r) => Number(r.rows[0].id));

describe("the direct path of `sextant mcp` (plain 2025-era tools/call over stdio)", () => {
  test("answers byte for byte what the SDK answers, takes only the calls it should, and writes the same audit rows", { timeout: 120_000 }, async () => {
    const answers: Record<"sdk" | "direct", string[]> = { sdk: [], direct: [] };
    const audits: Record<"sdk" | "direct", unknown[]> = { sdk: [], direct: [] };
    for (const path of ["sdk", "direct"] as const) {
      const marker = await lastAuditId();
      const session = rawSession(path === "direct");
      await session.open();
      for (const [what, message, takes] of CASES) {
        const before = session.directCalls();
        if (UNANSWERED.has(what)) {
          session.write(message);
          await new Promise((r) => setTimeout(r, 500));
          answers[path].push(session.lines.find((l) => JSON.parse(l).id === message.id) ?? "(no answer)");
        } else answers[path].push(masked(await session.request(message)));
        // The debug line is written before the answer, but stderr and stdout are separate pipes.
        if (path === "direct" && takes) await expect.poll(() => session.directCalls() - before, { message: what }).toBe(1);
        else expect(session.directCalls() - before, what).toBe(0);
      }
      // A line that is not JSON is dropped by the SDK; the session goes on.
      session.write('{"jsonrpc":"2.0","id":99,"method":"tools/call", nonsense\n');
      answers[path].push(masked(await session.request(call(21, "query", { sql: "select 5 as five" }))));
      // Ending stdin waits for the audit flush: the rows are there once the process has exited.
      expect(await session.end()).toBe(0);
      expect(session.stderr()).not.toMatch(/at .*\.(ts|mjs):\d+/);
      audits[path] = await auditSince(marker);
    }
    for (const [i, [what]] of CASES.entries()) expect(answers.direct[i], what).toBe(answers.sdk[i]);
    for (const what of UNANSWERED) expect(answers.sdk[CASES.findIndex(([w]) => w === what)], what).toBe("(no answer)");
    expect(answers.direct.at(-1)).toBe(answers.sdk.at(-1));
    expect(audits.direct).toEqual(audits.sdk);
    expect(audits.direct.length).toBeGreaterThanOrEqual(CASES.filter(([, , takes]) => takes).length);
    expect(new Set((audits.direct as { outcome: string }[]).map((r) => r.outcome))).toEqual(new Set(["ok", "refused"]));

    // The answers are what they claim: results, tool errors with SX codes, the SDK's own errors.
    const answer = (what: string) => JSON.parse(answers.direct[CASES.findIndex(([w]) => w === what)]!);
    expect(answer("a point lookup")).toMatchObject({ jsonrpc: "2.0", id: 1, result: { structuredContent: { columns: [{ name: "one" }, { name: "letter" }], rows: [[1, "a"]] } } });
    expect(answer("a string id").id).toBe("abc-1");
    expect(answer("a SQL error (isError)").result).toMatchObject({ isError: true, content: [{ text: expect.stringMatching(/division by zero/) }] });
    expect(answer("hostile: two statements").result.isError).toBe(true);
    expect(answer("hostile: another tenant's schema").result.isError).toBe(true);
    expect(answer("hostile: a NUL character (SX400)").result.content[0].text).toMatch(/^error SX400: arguments must not contain NUL/);
    expect(answer("hostile: a __proto__ key in the arguments").result.structuredContent).toMatchObject({ columns: [{ name: "g" }], rows: [[1], [2], [3]], row_count: 3 });
    expect(JSON.stringify(answer("an unknown tool"))).toMatch(/no_such_tool/);
    expect(answer("arguments at the element bound (2 keys + 9,998 elements)").result.structuredContent).toMatchObject({ row_count: 1 });
    expect(answer("hostile: one element over the bound").result).toEqual({
      content: [{ type: "text", text: "Invalid arguments for tool query: arguments contain more than the maximum of 10000 elements" }], isError: true });
  });

  test("a host that declares MCP Apps is answered directly, as the SDK answers it", async () => {
    const apps = { extensions: { "io.modelcontextprotocol/ui": { mimeTypes: ["text/html;profile=mcp-app"] } } };
    const texts: string[] = [];
    for (const direct of [false, true]) {
      const session = rawSession(direct);
      await session.open(apps);
      const listed = JSON.parse(await session.request({ jsonrpc: "2.0", id: "l", method: "tools/list" }));
      expect(listed.result.tools.find((t: { name: string }) => t.name === "query")._meta).toEqual({ ui: { resourceUri: "ui://sextant/query.html" } });
      texts.push(masked(await session.request(call(1, "query", { sql: "select 2 as two" }))));
      expect(session.directCalls()).toBe(direct ? 1 : 0);
      expect(await session.end()).toBe(0);
    }
    expect(texts[1]).toBe(texts[0]);
  });

  test("calls answer out of order when one is slow; a call cancelled is not answered; stdin's end waits for calls in flight", { timeout: 90_000 }, async () => {
    // A few hundred ms of work in PostgreSQL (pg_sleep is refused by the query guard).
    const slowSql = (name: string) => `select count(*) > 0 as ${name} from generate_series(1, 4000000)`;
    const session = rawSession(true);
    await session.open();
    const slow = session.request(call("slow", "query", { sql: slowSql("slept") }));
    const fast = await session.request(call("fast", "query", { sql: "select 1 as one" }));
    expect(rowObjects(JSON.parse(fast).result.structuredContent)).toEqual([{ one: 1 }]);
    expect(session.lines.some((l) => l.includes('"slow"'))).toBe(false);
    expect(rowObjects(JSON.parse(await slow).result.structuredContent)).toEqual([{ slept: true }]);
    // Cancelled: its SQL is cancelled (test/mcp/cancel.test.ts) and the call audited as SX499; no answer is written.
    const beforeGone = await lastAuditId();
    session.write(call("gone", "query", { sql: slowSql("cancelled_call") }));
    session.write({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: "gone", reason: "test" } });
    await session.request(call("after", "whoami"));
    await expect.poll(async () => (await auditSince(beforeGone)).filter((r) => r.sql === slowSql("cancelled_call")).map((r) => `${r.outcome} ${r.error_code}`), { timeout: 20_000 })
      .toEqual(["refused SX499"]);
    await new Promise((r) => setTimeout(r, 300));
    expect(session.lines.some((l) => l.includes('"gone"'))).toBe(false);
    // In flight when stdin ends: the process waits for it and its audit row before exiting.
    const marker = await lastAuditId();
    session.write(call("last", "query", { sql: slowSql("last_call") }));
    await expect.poll(() => session.directCalls()).toBe(5);
    expect(await session.end()).toBe(0);
    expect((await auditSince(marker)).map((r) => r.sql)).toEqual([slowSql("last_call")]);
    expect(session.stderr()).not.toMatch(/at .*\.(ts|mjs):\d+/);
  });

  test("real SDK clients: a 2025-era SDK 1.x client's calls go direct; a 2026-07-28 (SDK v2) client's go to the SDK", async () => {
    const v1 = new StdioClientTransport({ command: process.execPath, args: [SEXTANT_BIN, "mcp", "--tenant", "acme", "--role", "analyst"], env: serverEnv(true), stderr: "pipe" });
    let v1Err = "";
    v1.stderr?.on("data", (d) => (v1Err += String(d)));
    const client = new Client({ name: "stdio-direct-v1", version: "1.0.0" });
    await client.connect(v1);
    expect(await callRows(client, "query", { sql: "select 42 as answer" })).toMatchObject({ rows: [{ answer: 42 }] });
    expect(await callOk(client, "whoami")).toMatchObject({ tenant: "acme", access_level: "analyst", auth_method: "local" });
    await expect.poll(() => v1Err.split("\n").filter((l) => l.includes(DIRECT_LOG)).length).toBe(2);
    await client.close();

    const v2 = new StdioTransportV2({ command: process.execPath, args: [SEXTANT_BIN, "mcp", "--tenant", "acme", "--role", "analyst"], env: serverEnv(true), stderr: "pipe" });
    let v2Err = "";
    v2.stderr?.on("data", (d) => (v2Err += String(d)));
    const modern = new ClientV2({ name: "stdio-direct-v2", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } });
    await modern.connect(v2);
    expect(modern.getNegotiatedProtocolVersion()).toBe("2026-07-28");
    const result = await modern.callTool({ name: "query", arguments: { sql: "select 43 as answer" } });
    expect(result.structuredContent).toMatchObject({ columns: [{ name: "answer" }], rows: [[43]] });
    await new Promise((r) => setTimeout(r, 300));
    expect(v2Err).not.toContain(DIRECT_LOG);
    await modern.close();
  });
});
