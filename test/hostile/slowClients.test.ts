import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, test } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { boundedServer, warnOnDroppedConnections } from "../../src/http/clientBounds.ts";
import { useModelServer } from "../ask/modelServer.ts";
import { runCli } from "../helpers/cli.ts";
import { createToken } from "../helpers/db.ts";
import { eventually } from "../helpers/graphql.ts";
import { useServer, useTestDatabase } from "../helpers/setup.ts";

// Slow and idle HTTP clients against a real server, on raw sockets: a client that sends its
// headers or body a byte at a time, or opens connections and sends nothing, holds them only
// as long as SEXTANT_HTTP_HEADERS_TIMEOUT_MS / _REQUEST_TIMEOUT_MS / _MAX_CONNECTIONS allow
// (Node's own defaults: 60 s, 300 s checked every 30 s, and no cap); an answer that streams
// longer than the request bound is not cut, and the server answers others meanwhile.

const HEADERS_MS = 500;
const REQUEST_MS = 3000;

const logLines: string[] = [];
const sink = new Writable({ write(chunk, _enc, done) { logLines.push(String(chunk)); done(); } });
const db = useTestDatabase();
const model = useModelServer();
const timed = useServer(db, async () => ({ SEXTANT_HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS), SEXTANT_HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
  SEXTANT_LLM_URL: model.anthropicUrl, SEXTANT_LLM_MODEL: "claude-test", SEXTANT_LLM_API_KEY: "sk-ant-test" }), pino({ level: "debug" }, sink));
const capped = useServer(db, { SEXTANT_HTTP_MAX_CONNECTIONS: "3" }, pino({ level: "warn" }, sink));

/** A raw client socket: what it received, and when (ms after connecting) the server closed it. */
interface RawClient {
  socket: net.Socket;
  text(): string;
  /** Resolves with the ms from connect to close, or Infinity if still open after `waitMs`. */
  closed(waitMs: number): Promise<number>;
  isClosed(): boolean;
}

function connect(url: string): Promise<RawClient> {
  const { port } = new URL(url);
  const started = performance.now();
  const socket = net.connect(Number(port), "127.0.0.1");
  let text = "";
  let closedAt: number | undefined;
  socket.on("data", (d) => void (text += String(d)));
  const ended = new Promise<number>((done) => socket.on("close", () => done((closedAt = performance.now() - started))));
  return new Promise((resolve, reject) => {
    let connected = false;
    socket.on("error", (e) => void (connected || reject(e))); // once connected, a reset is a close
    socket.on("connect", () => {
      connected = true;
      resolve({
        socket,
        text: () => text,
        isClosed: () => closedAt !== undefined,
        closed: (waitMs) => Promise.race([ended, new Promise<number>((r) => setTimeout(() => r(Infinity), waitMs))]),
      });
    });
  });
}

/** One request on its own connection (Connection: close), read to its end: the status line's code and the text. */
async function request(url: string, head: string): Promise<{ status: number | undefined; text: string }> {
  const client = await connect(url);
  client.socket.write(`${head}Connection: close\r\n\r\n`);
  expect(await client.closed(10_000)).toBeLessThan(Infinity);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(client.text())?.[1]) || undefined, text: client.text() };
}
const health = (url: string) => request(url, `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the time a client has to send its request", () => {
  test("a client that sends part of its headers (or nothing) and then waits is answered 408 and closed after the headers timeout; others are served meanwhile", async () => {
    const partial = await connect(timed.url);
    partial.socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a");
    const silent = await connect(timed.url);
    expect((await health(timed.url)).status).toBe(200);
    for (const client of [partial, silent]) {
      const ms = await client.closed(10_000);
      // The headers bound plus at most one checking interval (250 ms here), with room for a loaded
      // machine; well before the request bound, and far before Node's default of 60 s.
      expect(ms).toBeGreaterThanOrEqual(HEADERS_MS - 50);
      expect(ms).toBeLessThan(REQUEST_MS - 500);
      expect(client.text()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    }
    expect((await health(timed.url)).status).toBe(200);
  });

  test.each([
    ["/mcp", "analyst"],
    ["/dbt/upload", "admin"],
  ])("a body sent a few bytes at a time to %s is cut after the request timeout", async (path, level) => {
    const before = logLines.length;
    const token = await createToken(db, "acme", `slow-body-${level}`, level);
    const slow = await connect(timed.url);
    slow.socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: application/json, text/event-stream\r\n` +
      `Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":`);
    const drip = setInterval(() => slow.socket.writable && slow.socket.write(" "), 200);
    try {
      const ms = await slow.closed(15_000);
      expect(ms).toBeGreaterThanOrEqual(REQUEST_MS - 50);
      expect(ms).toBeLessThan(REQUEST_MS + 2000);
      expect(slow.text()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    } finally {
      clearInterval(drip);
    }
    expect((await health(timed.url)).status).toBe(200);
    // The client's doing: no 'request failed' error with a stack in the log.
    expect(logLines.slice(before).filter((l) => /"level":50/.test(l) || /request failed/.test(l))).toEqual([]);
  });

  test("an upload cut by the request timeout is audited as the caller gone (SX499), and leaves no temporary file", async () => {
    const token = await createToken(db, "acme", "slow-uploader", "admin");
    const before = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("sextant-upload-"));
    const slow = await connect(timed.url);
    slow.socket.write(`POST /dbt/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      "Content-Type: application/gzip\r\nContent-Length: 100000\r\n\r\n");
    const drip = setInterval(() => slow.socket.writable && slow.socket.write(Buffer.alloc(10)), 200);
    try {
      expect(await slow.closed(15_000)).toBeLessThan(REQUEST_MS + 2000);
    } finally {
      clearInterval(drip);
    }
    const audited = await eventually(async () => (await db.admin.query(
      "select outcome, error_code from sextant.audit_events where principal = 'slow-uploader' and tool = 'dbt_upload'")).rows, 10_000);
    expect(audited).toEqual([{ outcome: "refused", error_code: "SX499" }]);
    expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("sextant-upload-") && !before.includes(f))).toEqual([]);
  });

  /** Holds an exclusive lock on acme_sales.orders until `release`: a query on it waits (the tenant's statement timeout is 15 s). */
  async function lockOrders() {
    const locker = await db.admin.connect();
    await locker.query("begin; lock table acme_sales.orders in access exclusive mode");
    let held = true;
    return {
      waiting: () => eventually(async () => (await db.admin.query(
        "select 1 from pg_stat_activity where usename = 'sextant_authenticator' and datname = current_database() and wait_event_type = 'Lock'")).rowCount, 20_000),
      async release() {
        if (!held) return;
        held = false;
        await locker.query("rollback").catch(() => {});
        locker.release();
      },
    };
  }
  const orderCount = async () => (await db.admin.query("select count(*)::int as n from acme_sales.orders")).rows[0].n as number;

  test("an event stream that runs longer than the request timeout is not cut: it keeps delivering its events to the end", async () => {
    const token = await createToken(db, "acme", "long-stream", "analyst");
    model.state.turns = [{ calls: [{ name: "query", arguments: { sql: "select count(*) as n from acme_sales.orders" } }] }, { text: "Counted the orders." }];
    const lock = await lockOrders();
    try {
      const body = JSON.stringify({ question: "How many orders are there?" });
      const stream = await connect(timed.url);
      stream.socket.write(`POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      expect(await lock.waiting()).toBe(1);
      // Past the request bound and two checking intervals: the stream is open, mid-answer.
      await sleep(REQUEST_MS + 1000);
      expect(stream.isClosed()).toBe(false);
      expect(stream.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(stream.text()).toMatch(/^event: tool_call$/m);
      expect(stream.text()).not.toMatch(/^event: tool_result$/m);
      await lock.release();
      expect(await stream.closed(20_000)).toBeLessThan(Infinity);
      const events = [...stream.text().matchAll(/^event: (.+)\ndata: (.+)$/gm)].map((m) => ({ event: m[1], data: JSON.parse(m[2]!) }));
      expect(events.map((e) => e.event)).toEqual(["conversation", "step", "tool_call", "tool_result", "step", "answer"]);
      expect(events[3]!.data).toMatchObject({ name: "query", ok: true, row_count: 1 });
      expect(events.at(-1)).toMatchObject({ event: "answer", data: { text: "Counted the orders." } });
      expect(JSON.stringify(model.state.requests.at(-1)!.toolResults)).toContain(String(await orderCount()));
    } finally {
      await lock.release();
      model.reset();
    }
  }, 60_000);

  test("a call whose answer takes longer than the request timeout is not cut: its request has arrived", async () => {
    const token = await createToken(db, "acme", "long-answer", "analyst");
    const lock = await lockOrders();
    try {
      const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call",
        params: { name: "query", _meta: { progressToken: "long" }, arguments: { sql: "select count(*) as n from acme_sales.orders" } } });
      const call = await connect(timed.url);
      call.socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: application/json, text/event-stream\r\n` +
        `MCP-Protocol-Version: 2025-06-18\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      expect(await lock.waiting()).toBe(1);
      await sleep(REQUEST_MS + 1000);
      expect(call.isClosed()).toBe(false);
      expect(call.text()).toBe("");
      await lock.release();
      expect(await call.closed(20_000)).toBeLessThan(Infinity);
      expect(call.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      const data = [...call.text().matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!));
      expect(data.at(-1)).toMatchObject({ id: 1, result: { structuredContent: { rows: [[await orderCount()]] } } });
    } finally {
      await lock.release();
    }
  }, 60_000);
});

describe("connections open at once", () => {
  test("with SEXTANT_HTTP_MAX_CONNECTIONS=3 three idle connections are kept, a fourth is closed at once without an answer (one warning for a flood), and once they close others are served", async () => {
    const before = logLines.length;
    const idle = [await connect(capped.url), await connect(capped.url), await connect(capped.url)];
    const fourth = await connect(capped.url);
    expect(await fourth.closed(5000)).toBeLessThan(2000);
    expect(fourth.text()).toBe("");
    // More in the same 10 s: closed as well, and no further log line.
    const flood = await Promise.all([1, 2, 3, 4, 5].map(() => connect(capped.url)));
    for (const client of flood) expect(await client.closed(5000)).toBeLessThan(Infinity);
    expect(idle.map((c) => c.isClosed())).toEqual([false, false, false]);
    const warnings = logLines.slice(before).filter((l) => l.includes("SEXTANT_HTTP_MAX_CONNECTIONS"));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, dropped: 1, maxConnections: 3 });

    for (const client of idle) client.socket.destroy();
    const answer = await eventually(async () => (await health(capped.url)).status === 200, 5000);
    expect(answer).toBe(true);
  });

  test("dropped connections are logged at most once a window, with the count since the last line", async () => {
    const lines: string[] = [];
    const log = pino({ level: "warn" }, new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } }));
    const server = boundedServer((_req, res) => res.end("ok"), { headersTimeoutMs: 10_000, requestTimeoutMs: 10_000, maxConnections: 1 });
    const drops = warnOnDroppedConnections(server, log, 400);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const held = await connect(url);
    try {
      const burst = async (n: number) => {
        const clients = await Promise.all(Array.from({ length: n }, () => connect(url)));
        for (const c of clients) expect(await c.closed(5000)).toBeLessThan(Infinity);
      };
      await burst(4);
      const dropped = () => lines.map((l) => JSON.parse(l).dropped as number);
      expect(dropped()[0]).toBe(1); // the first at once
      expect(await eventually(async () => dropped().reduce((a, b) => a + b, 0) === 4, 3000)).toBe(true);
      expect(dropped()).toEqual([1, 3]); // the other three in one line, after the window
      await burst(2);
      drops.stop(); // the two not logged yet (or already, if the window had passed)
      expect(dropped().reduce((a, b) => a + b, 0)).toBe(6);
      expect(dropped().length).toBeLessThanOrEqual(4);
    } finally {
      held.socket.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("settings", () => {
  test.each([
    [{ SEXTANT_HTTP_HEADERS_TIMEOUT_MS: "0" }, 'SEXTANT_HTTP_HEADERS_TIMEOUT_MS must be a whole number of milliseconds from 1 to 3600000, got "0"'],
    [{ SEXTANT_HTTP_HEADERS_TIMEOUT_MS: "20s" }, 'SEXTANT_HTTP_HEADERS_TIMEOUT_MS must be a whole number of milliseconds from 1 to 3600000, got "20s"'],
    [{ SEXTANT_HTTP_REQUEST_TIMEOUT_MS: "-1" }, 'SEXTANT_HTTP_REQUEST_TIMEOUT_MS must be a whole number of milliseconds from 1 to 3600000, got "-1"'],
    [{ SEXTANT_HTTP_REQUEST_TIMEOUT_MS: "10000" }, "SEXTANT_HTTP_REQUEST_TIMEOUT_MS (10000) must be at least SEXTANT_HTTP_HEADERS_TIMEOUT_MS (20000): the whole request includes its headers"],
    [{ SEXTANT_HTTP_HEADERS_TIMEOUT_MS: "5000", SEXTANT_HTTP_REQUEST_TIMEOUT_MS: "4999" }, "SEXTANT_HTTP_REQUEST_TIMEOUT_MS (4999) must be at least SEXTANT_HTTP_HEADERS_TIMEOUT_MS (5000): the whole request includes its headers"],
    [{ SEXTANT_HTTP_MAX_CONNECTIONS: "0" }, 'SEXTANT_HTTP_MAX_CONNECTIONS must be a whole number from 1 to 1000000, got "0"'],
    [{ SEXTANT_HTTP_MAX_CONNECTIONS: "1.5" }, 'SEXTANT_HTTP_MAX_CONNECTIONS must be a whole number from 1 to 1000000, got "1.5"'],
  ])("%j is refused: %s", (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  test("the defaults, and values that are given", () => {
    expect(loadConfig({}).http).toEqual({ headersTimeoutMs: 20_000, requestTimeoutMs: 60_000, maxConnections: 1024 });
    expect(loadConfig({ SEXTANT_HTTP_HEADERS_TIMEOUT_MS: "5000", SEXTANT_HTTP_REQUEST_TIMEOUT_MS: "5000", SEXTANT_HTTP_MAX_CONNECTIONS: "10" }).http)
      .toEqual({ headersTimeoutMs: 5000, requestTimeoutMs: 5000, maxConnections: 10 });
  });

  test("sextant serve with a bad value stops at once with one clear line, no stack", async () => {
    const { code, stderr } = await runCli(["serve"], { DATABASE_URL: db.adminUrl, SEXTANT_HTTP_MAX_CONNECTIONS: "none" });
    expect(code).toBe(1);
    expect(stderr.trim()).toBe('sextant: SEXTANT_HTTP_MAX_CONNECTIONS must be a whole number from 1 to 1000000, got "none"');
  });
});
