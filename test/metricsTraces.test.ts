import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createToken } from "./helpers/db.ts";
import { eventually, gql } from "./helpers/graphql.ts";
import { connectHttp } from "./helpers/mcpClient.ts";
import { startTestServer } from "./helpers/server.ts";
import { useTestDatabase } from "./helpers/setup.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  status?: { code?: number };
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

/** A stand-in OpenTelemetry collector on loopback: OTLP/HTTP JSON in, spans kept for the test. */
async function startCollector() {
  const spans: OtlpSpan[] = [];
  const types: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      types.push(String(req.headers["content-type"]));
      if (req.method === "POST" && req.url === "/v1/traces") {
        const doc = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, types, close: () => new Promise((r) => server.close(r)) };
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
};

const db = useTestDatabase();
let collector: Awaited<ReturnType<typeof startCollector>>;
let token: string;
beforeAll(async () => {
  collector = await startCollector();
  token = await createToken(db, "acme", "trace-bot", "analyst");
});
afterAll(async () => {
  await collector?.close();
});

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

describe("OpenTelemetry traces (SEXTANT_OTLP_ENDPOINT)", () => {
  test("an MCP call's _meta traceparent is the parent of its span and names its PostgreSQL session", async () => {
    const server = await startTestServer(db, { SEXTANT_OTLP_ENDPOINT: collector.url });
    try {
      const { client } = await connectHttp(server.url, token);
      // The call waits on a lock, so that its session can be seen in pg_stat_activity as an operator would.
      const locker = await db.admin.connect();
      let app: string;
      try {
        await locker.query("begin; lock table acme_sales.orders in access exclusive mode");
        const call = client.callTool({ name: "query", arguments: { sql: "select count(*) as n from acme_sales.orders" },
          _meta: { traceparent: `00-${TRACE}-${PARENT}-01` } });
        app = await eventually(async () => (await db.admin.query(
          "select application_name from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and usename = 'sextant_authenticator'")).rows[0]?.application_name, 15_000);
        await locker.query("rollback");
        const result = await call;
        expect(result.isError).toBeFalsy();
      } finally {
        await locker.query("rollback").catch(() => {});
        locker.release();
      }
      await client.close();
      expect(app).toMatch(new RegExp(`^sextant 00-${TRACE}-[0-9a-f]{16}-01$`));
      const spanId = app.split("-")[2];
      // Transaction-local: the pooled connection does not keep the name.
      expect((await db.auth.query("select 1")).rowCount).toBe(1);
      expect((await db.admin.query("select count(*)::int as n from pg_stat_activity where application_name like 'sextant 00-%' and state = 'idle'")).rows[0].n).toBe(0);

      const span = await eventually(async () => collector.spans.find((s) => s.name === "mcp query" && s.traceId === TRACE), 15_000);
      expect(span).toBeDefined();
      expect(span!.parentSpanId).toBe(PARENT);
      expect(span!.spanId).toBe(spanId); // the session was named after this very span
      expect(attr(span!, "sextant.tool")).toBe("query");
      expect(attr(span!, "sextant.tenant")).toBe("acme");
      expect(attr(span!, "sextant.outcome")).toBe("ok");
      expect(attr(span!, "sextant.rows")).toBe(1);
      expect(collector.types.every((t) => t.startsWith("application/json"))).toBe(true);

      // An HTTP request's traceparent header parents its request span; a malformed one is ignored.
      const r = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}`, traceparent: `00-${TRACE}-${"1".repeat(16)}-01` },
        body: JSON.stringify({ query: "{ whoami { tenant } }" }),
      });
      expect(r.status).toBe(200);
      await gql(server.url, token, "{ whoami { tenant } }"); // no header: a new trace
      const bad = await fetch(`${server.url}/health`, { headers: { traceparent: "00-zz-not-a-trace-parent-x; drop" } });
      expect(bad.status).toBe(200);
      const request = await eventually(async () => collector.spans.find((s) => s.name === "POST /graphql" && s.parentSpanId === "1".repeat(16)), 15_000);
      expect(request?.traceId).toBe(TRACE);
      expect(attr(request!, "http.route")).toBe("/graphql");
      const health = await eventually(async () => collector.spans.find((s) => s.name === "GET /health"), 15_000);
      expect(health?.parentSpanId || undefined).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  test("a GraphQL request's PostgreSQL session is named after the request's span", async () => {
    const server = await startTestServer(db, { SEXTANT_OTLP_ENDPOINT: collector.url });
    const locker = await db.admin.connect();
    const trace = "c".repeat(32);
    try {
      await locker.query("begin; lock table acme_sales.orders in access exclusive mode");
      const call = fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}`, traceparent: `00-${trace}-${PARENT}-01` },
        body: JSON.stringify({ query: '{ query(sql: "select count(*) as n from acme_sales.orders") { rows } }' }),
      });
      const app = await eventually(async () => (await db.admin.query(
        "select application_name from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and usename = 'sextant_authenticator'")).rows[0]?.application_name as string | undefined, 15_000);
      await locker.query("rollback");
      expect((await call).status).toBe(200);
      expect(app).toMatch(new RegExp(`^sextant 00-${trace}-[0-9a-f]{16}-01$`));
      const span = await eventually(async () => collector.spans.find((s) => s.traceId === trace && s.name === "POST /graphql"), 15_000);
      expect(span?.spanId).toBe(app!.split("-")[2]);
      expect(span?.parentSpanId).toBe(PARENT);
    } finally {
      await locker.query("rollback").catch(() => {});
      locker.release();
      await server.close();
    }
  });

  test("a refused call's span says so", async () => {
    const server = await startTestServer(db, { SEXTANT_OTLP_ENDPOINT: collector.url });
    try {
      const { client } = await connectHttp(server.url, token);
      const result = await client.callTool({ name: "query", arguments: { sql: "delete from acme_sales.orders" }, _meta: { traceparent: `00-${"a".repeat(32)}-${PARENT}-01` } });
      await client.close();
      expect(result.isError).toBe(true);
    } finally {
      await server.close(); // flushes what is queued
    }
    const span = collector.spans.find((s) => s.traceId === "a".repeat(32) && s.name === "mcp query");
    expect(span?.status?.code).toBe(2); // ERROR
    expect(attr(span!, "sextant.error_code")).toBe("SX400");
  });

  test("off by default: no spans, and sessions keep their own name", async () => {
    const before = collector.spans.length;
    const server = await startTestServer(db);
    try {
      const { client } = await connectHttp(server.url, token);
      const r = await client.callTool({ name: "query", arguments: { sql: "select 1 as one" }, _meta: { traceparent: `00-${"b".repeat(32)}-${PARENT}-01` } });
      await client.close();
      expect(r.isError).toBeFalsy();
      const { rows } = await db.admin.query("select count(*)::int as n from pg_stat_activity where application_name like 'sextant 00-%'");
      expect(rows[0].n).toBe(0);
    } finally {
      await server.close();
    }
    expect(collector.spans.length).toBe(before);
  });
});
