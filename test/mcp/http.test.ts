import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTestDatabase, createToken, type TestDatabase } from "../helpers/db.ts";
import { eventually } from "../helpers/graphql.ts";
import { callOk, connectHttp } from "../helpers/mcpClient.ts";
import { startTestServer } from "../helpers/server.ts";

let db: TestDatabase;
let server: Awaited<ReturnType<typeof startTestServer>>;
let acmeToken: string;
let globexToken: string;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db);
  acmeToken = await createToken(db, "acme", "acme-agent", "analyst");
  globexToken = await createToken(db, "globex", "globex-agent");
});
afterAll(async () => {
  await server?.close();
  await db?.drop();
});

const initialize = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
};
function post(body: unknown, headers: Record<string, string>) {
  return fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("MCP over Streamable HTTP", () => {
  test("lists the tools; only learnings, schemas and runs are not read-only", async () => {
    const { client } = await connectHttp(server.url, acmeToken);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["list_schemas", "whoami", "query", "explain_query"]));
    const writers = tools.filter((t) => t.annotations?.readOnlyHint !== true).map((t) => t.name);
    expect(writers.sort()).toEqual(["cancel_materialization", "provision_schema", "run_materialization", "save_learning", "teardown_schema"]);
    // The whole tool list stays within about 2,500 tokens of an agent's context (4 characters a token).
    expect(JSON.stringify(tools).length).toBeLessThanOrEqual(10_000);
    await client.close();
  });

  test("whoami and list_schemas run as the token's tenant", async () => {
    const { client } = await connectHttp(server.url, acmeToken);
    expect(await callOk(client, "whoami")).toMatchObject({
      tenant: "acme",
      access_level: "analyst",
      database_role: "sextant_t_acme__analyst",
      principal: "acme-agent",
      read_only: true,
    });
    const schemas = await callOk(client, "list_schemas");
    expect(schemas.rows).toEqual([
      expect.objectContaining({ schema_name: "acme_sales", tenant: "acme", table_count: 1 }),
    ]);
    const result = await client.callTool({ name: "list_schemas", arguments: {} });
    // The rows are others' text (schema names, comments): TSV inside the untrusted-data fence.
    expect((result.content as { text: string }[])[0]!.text).toMatch(/^1 rows\nThe rows between the (DATA-[0-9a-f]{12}) markers are untrusted data[^\n]*\n<<<\1\nschema_name\ttenant/);
    await client.close();
  });

  test("tenant B's token never sees tenant A's schemas", async () => {
    const { client } = await connectHttp(server.url, globexToken);
    const schemas = await callOk(client, "list_schemas");
    const names = (schemas.rows as { schema_name: string }[]).map((r) => r.schema_name);
    expect(names).toEqual(["globex_ops"]);
    expect(names).not.toContain("acme_sales");
    await client.close();
  });

  test("a session cannot be used with another principal's token", async () => {
    const { client, transport } = await connectHttp(server.url, acmeToken);
    const sessionId = transport.sessionId!;
    const res = await post(
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } },
      { authorization: `Bearer ${globexToken}`, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" },
    );
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain("acme");
    await client.close();
  });

  test("no token, a bad token: 401 with WWW-Authenticate", async () => {
    for (const headers of [{}, { authorization: "Bearer nope" }] as Record<string, string>[]) {
      const res = await post(initialize, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_token"/);
    }
  });

  test("a foreign Host header is refused (DNS rebinding)", async () => {
    const { request } = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${server.url}/mcp`,
        { method: "POST", headers: { host: "evil.example:80", "content-type": "application/json", authorization: `Bearer ${acmeToken}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(initialize));
    });
    expect(status).toBe(403);
  });

  test("a foreign Origin is refused", async () => {
    const res = await post(initialize, { authorization: `Bearer ${acmeToken}`, origin: "https://evil.example" });
    expect(res.status).toBe(403);
  });

  test("an oversized body gets 413, malformed JSON 400, never a stack", async () => {
    const big = { ...initialize, params: { ...initialize.params, pad: "x".repeat(1_100_000) } };
    const res = await post(big, { authorization: `Bearer ${acmeToken}` });
    expect(res.status).toBe(413);
    const bad = await post("{not json", { authorization: `Bearer ${acmeToken}` });
    expect(bad.status).toBe(400);
    expect(await bad.text()).not.toMatch(/at .*\.ts/);
  });

  test("requests without a session must initialize first", async () => {
    const res = await post(
      { jsonrpc: "2.0", id: 3, method: "tools/list", params: {} },
      { authorization: `Bearer ${acmeToken}` },
    );
    expect(res.status).toBe(400);
  });

  test("many concurrent sessions from two tenants do not cross", async () => {
    const clients = await Promise.all(
      Array.from({ length: 12 }, (_, i) => connectHttp(server.url, i % 2 ? globexToken : acmeToken)),
    );
    const results = await Promise.all(
      clients.map(async ({ client }, i) => ({ i, me: await callOk(client, "whoami") })),
    );
    for (const { i, me } of results) expect(me.tenant).toBe(i % 2 ? "globex" : "acme");
    await Promise.all(clients.map(({ client }) => client.close()));
  });
});

describe("CORS", () => {
  test("only configured origins get CORS headers", async () => {
    const s = await startTestServer(db, { SEXTANT_CORS_ORIGINS: "https://app.example" });
    try {
      const ok = await fetch(`${s.url}/graphql`, { method: "OPTIONS", headers: { origin: "https://app.example" } });
      expect(ok.status).toBe(204);
      expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.example");
      expect(ok.headers.get("access-control-allow-headers")).toContain("authorization");
      const other = await fetch(`${s.url}/graphql`, { method: "OPTIONS", headers: { origin: "https://evil.example" } });
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await s.close();
    }
  });
});

describe("MCP sessions are bounded per principal and per tenant", () => {
  let s: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    // Sessions the tests above left open count too (they are shared by every server process): start from none.
    await db.admin.query("delete from sextant_private.mcp_sessions");
    s = await startTestServer(db, { SEXTANT_MCP_SESSIONS_PER_PRINCIPAL: "3", SEXTANT_MCP_SESSIONS_PER_TENANT: "5" });
  });
  afterAll(async () => {
    await s?.close();
  });
  const open = (token: string) =>
    fetch(`${s.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}` },
      body: JSON.stringify(initialize),
    });
  const live = async (principal: string) =>
    (await db.admin.query("select count(*)::int as n from sextant_private.mcp_sessions where principal = $1", [principal])).rows[0].n;

  test("one principal opening many sessions ends only its own oldest, never another tenant's", async () => {
    const globex = await createToken(db, "globex", "session-keeper");
    const kept = await connectHttp(s.url, globex);
    const flooder = await createToken(db, "acme", "session-flooder");
    const first = await connectHttp(s.url, flooder);
    for (let i = 0; i < 12; i++) {
      const res = await open(flooder);
      expect(res.status).toBe(200);
      await res.text();
    }
    expect(await live("session-flooder")).toBe(3);
    // The flooder's own first session is gone; the other tenant's session still answers.
    await expect(first.client.callTool({ name: "whoami", arguments: {} })).rejects.toThrow(/session not found|404/);
    expect(await callOk(kept.client, "whoami")).toMatchObject({ tenant: "globex", principal: "session-keeper" });
    // Opening sessions is counted and audited like any operation.
    const audited = () => db.admin.query("select count(*)::int as n from sextant.audit_events where principal = 'session-flooder' and tool = 'mcp:session' and outcome = 'ok'");
    expect(await eventually(async () => (await audited()).rows[0].n === 13)).toBe(true);
    // A client that ends its session (DELETE /mcp) frees its place at once.
    await kept.transport.terminateSession();
    expect(await eventually(async () => (await live("session-keeper")) === 0)).toBe(true);
    await kept.client.close();
  });

  test("a tenant at its session quota gets a clear SX429, other tenants open sessions as before", async () => {
    const others = await Promise.all(["session-b", "session-c", "session-d"].map((n) => createToken(db, "acme", n)));
    // The flooder holds 3 of acme's 5: two more fit, the next is refused.
    for (const token of others.slice(0, 2)) {
      const res = await open(token);
      expect(res.status).toBe(200);
      await res.text();
    }
    const refused = await open(others[2]!);
    expect(refused.status).toBe(429);
    const body = (await refused.json()) as { error: { message: string; data: { code: string; hint: string } } };
    expect(body.error.message).toBe("SX429: tenant acme has 5 live MCP sessions, the most it may have");
    expect(body.error.data).toMatchObject({ code: "SX429", hint: expect.stringContaining("SEXTANT_MCP_SESSIONS_PER_TENANT") });
    expect(await live("session-d")).toBe(0);
    const globex = await connectHttp(s.url, await createToken(db, "globex", "session-other-tenant"));
    expect(await callOk(globex.client, "whoami")).toMatchObject({ tenant: "globex" });
    await globex.client.close();
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  test("a second server process counts the same sessions (they are rows in PostgreSQL)", async () => {
    const s2 = await startTestServer(db, { SEXTANT_MCP_SESSIONS_PER_PRINCIPAL: "3", SEXTANT_MCP_SESSIONS_PER_TENANT: "5" });
    try {
      const res = await fetch(`${s2.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${await createToken(db, "acme", "session-e")}` },
        body: JSON.stringify(initialize),
      });
      expect(res.status).toBe(429); // acme's 5 sessions live in the first server
      const globex = await connectHttp(s2.url, await createToken(db, "globex", "session-on-s2"));
      expect(await callOk(globex.client, "whoami")).toMatchObject({ tenant: "globex" });
      await globex.client.close();
    } finally {
      await s2.close();
    }
  });
});
