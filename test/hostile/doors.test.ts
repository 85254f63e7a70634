import net from "node:net";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AuditLog } from "../../src/audit/auditLog.ts";
import { RateLimiter } from "../../src/audit/rateLimiter.ts";
import { createToken } from "../helpers/db.ts";
import { eventually, gql } from "../helpers/graphql.ts";
import { callOk, callRows, connectHttp, postMcp, textOf } from "../helpers/mcpClient.ts";
import { capturedLog } from "../helpers/rawHttp.ts";
import { useTestServer } from "../helpers/setup.ts";

// Attacks on the doors themselves (audit, rate limits, GraphQL cost, MCP sessions), each
// checked for refusal, no side effect on other tenants, and a healthy server afterwards.

const clients: Client[] = [];
// Every line the server logs, to check that no tenant's text reaches the log through another's failure.
const log = capturedLog();
const logLines = log.lines;
const { db, server } = useTestServer({}, log.logger);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
});

async function mcp(token: string): Promise<Client> {
  const { client } = await connectHttp(server.url, token);
  clients.push(client);
  return client;
}

async function healthy() {
  const res = await fetch(`${server.url}/health`);
  expect(res.status).toBe(200);
  return (await res.json()) as { status: string; audit: { stored: number; dropped: number; queued: number } };
}

async function audited(where: string, params: unknown[] = []) {
  return (await db.admin.query(`select * from sextant.audit_events where ${where} order by id`, params)).rows;
}

/** The events matching `where`, once there are at least `n` (audit is written in batches). */
async function auditedSoon(where: string, n = 1) {
  return (await eventually(async () => { const rows = await audited(where); return rows.length >= n ? rows : undefined; })) ?? [];
}

describe("audit log", () => {
  test("a NUL in one tenant's SQL is audited sanitised and never jams other tenants' events", async () => {
    const mallory = await mcp(await createToken(db, "acme", "mallory-nul"));
    const bob = await mcp(await createToken(db, "globex", "bob-after-nul"));
    const refused = await mallory.callTool({ name: "query", arguments: { sql: "select 1 -- \u0000 globex-must-not-be-logged" } });
    expect(textOf(refused)).toMatch(/^error SX400: arguments must not contain NUL/);
    const secret = "select 'bob private text' as t";
    await callRows(bob, "query", { sql: secret });
    const bobRows = await eventually(async () => (await audited("principal = 'bob-after-nul' and tool = 'query'")).length);
    expect(bobRows).toBe(1);
    const [nul] = await auditedSoon("principal = 'mallory-nul' and tool = 'query'");
    expect(nul).toMatchObject({ tenant_slug: "acme", outcome: "refused" });
    expect(nul.sql).toBe("select 1 -- \uFFFD globex-must-not-be-logged");
    const { audit } = await healthy();
    expect(audit).toMatchObject({ dropped: 0, queued: 0 });
    expect(logLines.join("")).not.toContain("bob private text");
  });

  test("arguments nested 5,000 deep are refused with SX400 on both paths, audited, and the server answers on", async () => {
    const token = await createToken(db, "acme", "deep-nesting");
    // Raw JSON-RPC (an SDK client's own schema check overflows on it): the direct path, and the
    // SDK's (params._meta sends a call there).
    const call = async (extra: unknown, meta: boolean) => {
      const res = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}`, "mcp-protocol-version": "2025-06-18" },
        body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query",${meta ? '"_meta":{},' : ""}"arguments":{"sql":"select 1 as one","extra":${extra}}}}`,
      });
      const text = await res.text();
      const json = JSON.parse(text.startsWith("{") ? text : /^data: (.*)$/m.exec(text)![1]!) as { result: { content: { text: string }[]; structuredContent?: unknown } };
      return json.result;
    };
    const nested = (n: number) => `${"[".repeat(n)}"x"${"]".repeat(n)}`;
    for (const meta of [false, true]) {
      expect((await call(nested(5000), meta)).content[0]!.text).toMatch(/^error SX400: arguments are nested more than 32 levels deep/);
      // 30 arrays under the argument object are still only data the tool ignores.
      expect((await call(nested(30), meta)).structuredContent).toMatchObject({ columns: [{ name: "one" }], rows: [[1]] });
    }
    const rows = await auditedSoon("principal = 'deep-nesting' and outcome = 'refused'", 2);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ tool: "query", outcome: "refused" });
  });

  test("GraphQL: a NUL in the SQL is refused, audited sanitised, and later events land", async () => {
    const token = await createToken(db, "acme", "mallory-nul-gql");
    const { body } = await gql(server.url, token, "query($sql: String!) { query(sql: $sql) { rowCount } }", { sql: "select 1 -- \u0000 x" });
    expect(body.errors?.[0].extensions.code).toMatch(/^(SX400|22)/);
    const [event] = await auditedSoon("principal = 'mallory-nul-gql'");
    expect(event).toMatchObject({ tool: "graphql:query", outcome: "refused", sql: "select 1 -- \uFFFD x" });
    await gql(server.url, await createToken(db, "globex", "after-gql-nul"), "{ whoami { tenant } }");
    expect(await auditedSoon("principal = 'after-gql-nul' and tool = 'graphql:whoami'")).toHaveLength(1);
    expect((await healthy()).audit.dropped).toBe(0);
  });

  test("record_audit stores a raw NUL and lone surrogates sanitised, skips only an event it cannot store", async () => {
    const raw = `[{"tenant_slug":"acme","principal":"raw\\u0000nul","tool":"t","outcome":"ok","duration_ms":1,"sql":"a\\ud800b \\\\u0000 \\ud83d\\ude00"},
                  {"tenant_slug":"acme","principal":"raw-bad","tool":"t","outcome":"ok","duration_ms":"not a number"},
                  {"tenant_slug":"globex","principal":"raw-good","tool":"t","outcome":"ok","duration_ms":2}]`;
    const { rows } = await db.auth.query("select sextant_private.record_audit($1::json) as n", [raw]);
    expect(rows[0].n).toBe(2);
    const [stored] = await audited("principal = 'raw\uFFFDnul'");
    expect(stored.sql).toBe("a\uFFFDb \\u0000 \u{1F600}");
    expect(await audited("principal = 'raw-good'")).toHaveLength(1);
    expect(await audited("principal = 'raw-bad'")).toHaveLength(0);
  });

  test("an event the database cannot store is dropped and counted, the others land, the error names no event text", async () => {
    const errors: string[] = [];
    const log = new AuditLog(db.auth, (e) => errors.push(String((e as Error).message)), 10_000);
    const base = { at: new Date().toISOString(), tenant_slug: "acme", auth_method: "api_token", database_role: "sextant_t_acme", tool: "query", outcome: "ok" as const };
    log.record({ ...base, principal: "dropped-one", sql: "acme text of the bad event", duration_ms: Number.NaN, row_count: 1.5 });
    log.record({ ...base, principal: "lone\uD800", sql: "x\u0000y", duration_ms: 1 });
    // An outcome the table's check refuses is stored as 'error'; a time that is no time cannot be stored at all.
    log.record({ ...base, principal: "bogus-outcome", sql: "acme text", duration_ms: 1, outcome: "bogus" as never });
    log.record({ ...base, at: "not a time", principal: "unstorable", sql: "acme text of the bad event", duration_ms: 1 });
    log.record({ ...base, tenant_slug: "globex", principal: "next-one", sql: "globex text", duration_ms: 1 });
    await log.flush();
    expect(await audited("principal in ('dropped-one', 'lone\uFFFD', 'next-one')")).toHaveLength(3);
    expect((await audited("principal = 'bogus-outcome'"))[0].outcome).toBe("error");
    expect(await audited("principal = 'unstorable'")).toHaveLength(0);
    expect(log.stats()).toEqual({ stored: 4, dropped: 1, queued: 0 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/1 of 5 events could not be stored/);
    expect(errors.join("")).not.toMatch(/text|acme|globex/);
    // The queue is free: the next flush stores the next event.
    log.record({ ...base, principal: "after-drop", duration_ms: 1 });
    await log.flush();
    expect(await audited("principal = 'after-drop'")).toHaveLength(1);
    await log.close();
  });
});

describe("principal names", () => {
  test("a principal name with | and other separators crashes nothing (MCP and GraphQL), and is rate-counted", async () => {
    const name = "eve|1700000000000|x:minute\u00a0\"'";
    const token = await createToken(db, "acme", name);
    const client = await mcp(token);
    expect(await callOk(client, "whoami")).toMatchObject({ principal: name });
    const g = await gql(server.url, token, "{ whoami { principal } }");
    expect(g.body.errors).toBeUndefined();
    expect(g.body.data.whoami.principal).toBe(name);
    // The rate-limit flush (every 100 ms) is where the name once crashed the server.
    const buckets = await eventually(async () => {
      const n = (await db.admin.query("select sum(hits)::int as n from sextant_private.rate_buckets where bucket = $1", [`p:acme:${name}:minute`])).rows[0].n;
      return n >= 2 ? n : 0;
    });
    expect(buckets).toBeGreaterThanOrEqual(2);
    expect((await healthy()).status).toBe("ok");
    const other = await mcp(await createToken(db, "globex", "after-eve"));
    expect(await callOk(other, "whoami")).toMatchObject({ tenant: "globex" });
    expect(textOf(await client.callTool({ name: "whoami", arguments: {} }))).toContain("acme");
  });
});

describe("rate limits", () => {
  test("principal names PostgreSQL cannot store (NUL, 10 kB) are counted under a hash; nobody's counting stops", async () => {
    const limiter = new RateLimiter(db.auth);
    const who = (subject: string) => ({ tenant: "acme", subject, accessLevel: "viewer" as const, dbRole: "sextant_t_acme", authMethod: "jwt" as const, statementTimeoutMs: 1000 });
    // Counted at admission: a name PostgreSQL could not store would make hit() throw.
    await expect(limiter.hit(who("nul\u0000sub"), 2)).resolves.toBeUndefined();
    await expect(limiter.hit(who("x".repeat(10_000)))).resolves.toBeUndefined();
    await expect(limiter.hit(who("plain-after-hostile"))).resolves.toBeUndefined();
    const { rows } = await db.admin.query(
      "select bucket, hits from sextant_private.rate_buckets where bucket like 'p:acme:#%:minute' or bucket = 'p:acme:plain-after-hostile:minute' order by bucket");
    expect(rows.map((r) => r.hits).sort()).toEqual([1, 1, 2]);
    expect(rows.every((r) => r.bucket.length < 300 && !r.bucket.includes("\u0000"))).toBe(true);
  });
});

describe("GraphQL cost", () => {
  /** The attack from issue 13 (about 1.9 kB): 8 levels of a relation cycle, each asked 3 times under aliases. */
  function fanOut(levels: number, aliases: number): string {
    const frags = Array.from({ length: levels }, (_, i) => {
      const next = i + 1 < levels ? `...L${i + 1}` : "name";
      const copies = Array.from({ length: aliases }, (_, a) => `a${a}: principalsByTenantSlug { nodes { ${next} } }`).join(" ");
      return `fragment L${i} on Principal { name tenantByTenantSlug { ${copies} } }`;
    });
    return `{ allPrincipals { nodes { ...L0 } } }\n${frags.join("\n")}`;
  }

  test("a nested, aliased fan-out query is refused before it runs, fast, and the server stays healthy", async () => {
    const token = await createToken(db, "acme", "fan-out", "admin");
    const query = fanOut(8, 3);
    expect(query.length).toBeLessThan(2500);
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const { status, body, bytes } = await gql(server.url, token, query);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(status).toBe(400);
    expect(body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/^query is too costly/), extensions: { code: "SX413" } });
    expect(bytes).toBeLessThan(5000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 1024 * 1024);
    // Nothing ran, so nothing was counted or audited.
    expect(await audited("principal = 'fan-out'")).toHaveLength(0);
    expect((await healthy()).status).toBe("ok");
    expect((await gql(server.url, await createToken(db, "globex", "after-fan-out"), "{ whoami { tenant } }")).body.data.whoami.tenant).toBe("globex");
  });

  test("page sizes passed as variables are measured too", async () => {
    const token = await createToken(db, "acme", "variable-pages");
    const query = "query($n: Int) { allPrincipals(first: $n) { nodes { tenantByTenantSlug { principalsByTenantSlug(first: $n) { nodes { name } } } } } }";
    const big = await gql(server.url, token, query, { n: 1_000_000 });
    expect(big.body.errors?.[0]).toMatchObject({ extensions: { code: "SX413" } });
    expect(big.body.data ?? null).toBeNull();
    const small = await gql(server.url, token, query, { n: 5 });
    expect(small.body.errors).toBeUndefined();
  });

  test("more aliases than allowed are refused, fragments cannot multiply the work unseen", async () => {
    const token = await createToken(db, "acme", "alias-flood");
    const many = `{ ${Array.from({ length: 101 }, (_, i) => `w${i}: whoami { tenant }`).join(" ")} }`;
    expect((await gql(server.url, token, many)).body.errors?.[0]).toMatchObject({ message: "query is too costly: more than 100 aliased fields", extensions: { code: "SX413" } });
    // Each fragment spreads the next one ten times: a billion fields if expanded.
    const frags = Array.from({ length: 9 }, (_, i) => `fragment F${i} on Query { ${Array.from({ length: 10 }, () => `...F${i + 1}`).join(" ")} }`).join("\n");
    const laughs = `query { ...F0 }\n${frags}\nfragment F9 on Query { whoami { tenant } }`;
    const started = performance.now();
    const res = await gql(server.url, token, laughs);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(res.body.errors?.[0]).toMatchObject({ extensions: { code: "SX413" } });
    expect((await healthy()).status).toBe("ok");
  });
});

describe("MCP without sessions", () => {
  test("initialize opens nothing and costs no call; the per-minute limit counts tool calls (SX429, Retry after)", async () => {
    await db.admin.query("update sextant.tenants set rate_per_minute = 2 where slug = 'globex'");
    try {
      const token = await createToken(db, "globex", "session-opener");
      const open = () => postMcp(`${server.url}/mcp`, token,
        { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } });
      for (let i = 0; i < 3; i++) expect(await open().then(async (r) => (await r.text(), r.status))).toBe(200);
      const client = await mcp(token);
      expect(await callOk(client, "whoami")).toMatchObject({ principal: "session-opener" });
      expect(await callOk(client, "whoami")).toMatchObject({ principal: "session-opener" });
      const refused = await client.callTool({ name: "whoami", arguments: {} });
      expect(refused.isError).toBe(true);
      expect(JSON.stringify(refused.content)).toMatch(/SX429: rate limit reached.*Retry after \d+ seconds/);
      // Nothing is kept per session: the table that once counted them is gone (migration 000066).
      expect((await db.admin.query("select to_regclass('sextant_private.mcp_sessions') as t")).rows[0].t).toBeNull();
      expect((await healthy()).status).toBe("ok");
    } finally {
      await db.admin.query("update sextant.tenants set rate_per_minute = 120 where slug = 'globex'");
    }
  });
});

describe("MCP bodies cut short", () => {
  // A client that announces more bytes than it sends and then closes (or half-closes) is the
  // client's doing: never an internal error with a logged stack, and the server answers on.
  test.each(["destroy", "half-close"])("a Content-Length longer than the body, then %s: nothing logged as a failure, the server answers on", async (how) => {
    const token = await createToken(db, "acme", `cut-short-${how}`);
    const before = logLines.length;
    const { port } = new URL(server.url);
    // The client is gone (or has half-closed): no answer can reach it. What is checked is the
    // server's side: nothing logged as a failure, and it answers on.
    await new Promise<string>((resolve) => {
      const socket = net.connect(Number(port), "127.0.0.1", () => {
        socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
          "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 500\r\n\r\n" +
          '{"jsonrpc":"2.0","id":1,"method":"tools/list"');
        setTimeout(() => (how === "destroy" ? (socket.destroy(), resolve("")) : socket.end()), 100);
      });
      let text = "";
      socket.on("data", (d) => void (text += String(d)));
      socket.on("close", () => resolve(text));
      socket.on("error", () => resolve(text));
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(log.failuresSince(before)).toEqual([]);
    expect((await healthy()).status).toBe("ok");
  });
});
