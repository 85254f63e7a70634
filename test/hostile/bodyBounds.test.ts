import net from "node:net";
import { describe, expect, test } from "vitest";
import { createToken } from "../helpers/db.ts";
import { capturedLog, chunk, rawExchange } from "../helpers/rawHttp.ts";
import { useTestServer } from "../helpers/setup.ts";

// Every HTTP door that reads a body, as a hostile client sees it on a raw socket: a body
// declared far past the door's limit, or streamed past it without end, is refused as soon as
// that is known and the connection closed, not read and thrown away until the request timeout.
// (/mcp and /ask: test/hostile/mcpBody.test.ts and ask.test.ts.)

const log = capturedLog();
const { lines: logLines, failuresSince } = log;
const { db, server } = useTestServer({ SEXTANT_UPLOAD_LIMIT_MB: "1" }, log.logger);

const raw = (bytes: (string | Buffer)[], waitMs?: number) => rawExchange(server.url, bytes, waitMs);

let tokenNo = 0;
const doors = async (): Promise<[string, string, string][]> => {
  const token = await createToken(db, "acme", `body-bounds-${++tokenNo}`, "analyst");
  const admin = await createToken(db, "acme", `body-bounds-${++tokenNo}`, "admin");
  return [
    ["/graphql", `Authorization: Bearer ${token}\r\n`, "application/json"],
    ["/dbt/upload", `Authorization: Bearer ${admin}\r\n`, "application/json"],
    ["/token", "", "application/x-www-form-urlencoded"],
    ["/authorize", "", "application/x-www-form-urlencoded"],
    ["/register", "", "application/json"],
    ["/oauth/login", "", "application/x-www-form-urlencoded"],
    ["/slack/events", "", "application/json"],
    ["/console/api/login", `Origin: ${server.url}\r\n`, "application/json"],
  ];
};

describe("bodies past a door's limit", () => {
  test("a 16-digit Content-Length, a few bytes sent: refused at once (4xx), the socket closed", async () => {
    const { port } = new URL(server.url);
    const seen: Record<string, unknown> = {};
    const before = logLines.length;
    for (const [path, extra, type] of await doors()) {
      const res = await raw([`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}Content-Type: ${type}\r\nContent-Length: 9999999999999999\r\n\r\n{"a":`]);
      seen[path] = { status: res.status, closed: res.closedAfterMs < 2000 };
    }
    expect(seen).toEqual(Object.fromEntries((await doors()).map(([p]) => [p, { status: 413, closed: true }])));
    expect(failuresSince(before)).toEqual([]);
  });

  test("chunks without end: refused once past the limit (4xx), the socket closed", async () => {
    const { port } = new URL(server.url);
    const seen: Record<string, unknown> = {};
    const before = logLines.length;
    for (const [path, extra, type] of await doors()) {
      const res = await raw([`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}Content-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n` + chunk("a".repeat(600_000)) + chunk("a".repeat(600_000))]);
      seen[path] = { status: res.status, closed: res.closedAfterMs < 2000 };
    }
    expect(seen).toEqual(Object.fromEntries((await doors()).map(([p]) => [p, { status: 413, closed: true }])));
    expect(failuresSince(before)).toEqual([]);
  });

  test("a charset or Content-Encoding the door's parser does not read is SX400, not an internal error", async () => {
    const { port } = new URL(server.url);
    const before = logLines.length;
    const seen: Record<string, unknown> = {};
    for (const [path, headers] of [
      ["/console/api/login", `Origin: ${server.url}\r\nContent-Type: application/json; charset=latin1\r\n`],
      ["/token", "Content-Type: application/x-www-form-urlencoded; charset=latin1\r\n"],
      ["/slack/events", "Content-Type: application/json\r\nContent-Encoding: compress\r\n"],
    ]) {
      const res = await raw([`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${headers}Content-Length: 7\r\n\r\n{"a":1}`]);
      seen[path!] = { status: res.status, code: /"code":"(\w+)"/.exec(res.text)?.[1] };
    }
    expect(seen).toEqual({ "/console/api/login": { status: 400, code: "SX400" }, "/token": { status: 400, code: "SX400" }, "/slack/events": { status: 400, code: "SX400" } });
    expect(failuresSince(before)).toEqual([]);
  });
});

describe("bodies nobody reads", () => {
  // An answer given before the body has arrived (401 without a credential, 404, a body a route
  // ignores) left Node reading and throwing away the rest for as long as it came, up to the
  // request timeout (60 s): unless declared at most 256 kB long, the connection is closed.
  test.each([
    ["POST /mcp without a credential", "POST /mcp", 401],
    ["POST to a path that does not exist", "POST /nothing-here", 404],
    ["POST /graphql without a credential", "POST /graphql", 401],
  ])("%s, chunks without end: answered at once, the socket closed", async (_what, line, status) => {
    const { port } = new URL(server.url);
    const res = await raw([`${line} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` + chunk("a".repeat(300_000)) + chunk("a".repeat(300_000))]);
    expect(res.status).toBe(status);
    expect(res.closedAfterMs).toBeLessThan(2000);
  });

  test("a request answered without its body read keeps its connection for the next request when the body is short", async () => {
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), "127.0.0.1");
    let text = "";
    let closed = false;
    socket.on("close", () => void (closed = true));
    socket.on("error", () => {});
    // Each answer's status line (the next one follows the JSON body on the same line).
    const statuses = () => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    const answers = (n: number) => new Promise<void>((resolve) => {
      const check = () => (statuses().length >= n || closed) && (socket.off("data", check), resolve());
      socket.on("data", check);
      check();
    });
    socket.on("data", (d) => void (text += String(d)));
    try {
      const body = JSON.stringify({ pad: "a".repeat(2_000) });
      socket.write(`POST /nothing-here HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      await answers(1);
      socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      await answers(2);
      expect(statuses()).toEqual([404, 200]);
      expect(closed).toBe(false);
    } finally {
      socket.destroy();
    }
  });
});
