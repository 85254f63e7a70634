import net from "node:net";
import { describe, expect, test } from "vitest";
import { directCallsAnswered } from "../../src/mcp/directCall.ts";
import { createToken } from "../helpers/db.ts";
import { freePort } from "../helpers/ports.ts";
import { capturedLog, chunk, rawExchange } from "../helpers/rawHttp.ts";
import { useTestServer } from "../helpers/setup.ts";

// The HTTP door of /mcp as a hostile client sees it: raw bytes on a socket and odd fetches
// against a real server. Every answer is a 4xx with a JSON body or the tool's own refusal,
// never a 500, a stack or a hang; nothing is logged as a failure; the server answers on.

const log = capturedLog();
const { lines: logLines, failuresSince } = log;
// A known port, so the public URL (http://localhost:PORT) and its loopback aliases are this server's.
const { db, server } = useTestServer(async () => ({ PORT: String(await freePort()) }), log.logger);

const raw = (bytes: (string | Buffer)[], waitMs?: number) => rawExchange(server.url, bytes, waitMs);

/** The JSON-RPC messages in an answer's body: a JSON body, or the data lines of an event stream (chunked or not). */
function messages(body: string): { id?: unknown; result?: { content: { text: string }[]; isError?: boolean; structuredContent?: unknown }; error?: { code: number; message: string } }[] {
  const data = [...body.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!));
  if (data.length > 0) return data;
  const json = body.slice(body.indexOf("{"), body.lastIndexOf("}") + 1);
  return [JSON.parse(json)];
}

async function healthy() {
  const res = await fetch(`${server.url}/health`);
  expect(res.status).toBe(200);
}

let tokenNo = 0;
/** A request head for POST /mcp on `port` with an analyst token; `extra` header lines end in CRLF. */
async function requestHead(extra: string, opts: { target?: string; close?: boolean; version?: string } = {}) {
  const token = await createToken(db, "acme", `mcp-body-${++tokenNo}`, "analyst");
  const { port } = new URL(server.url);
  return (`POST ${opts.target ?? "/mcp"} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
    `Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: ${opts.version ?? "2025-06-18"}\r\n${opts.close === false ? "" : "Connection: close\r\n"}${extra}\r\n`);
}
const withLength = (type: string, body: string) => `Content-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;

const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
const CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select 1 as one"}}}';

describe("bodies the SDK answers (batches, calls that ask for progress, odd ids)", () => {
  // The SDK's Node adapter turned a parsed body back into text with JSON.stringify, which
  // overflowed the stack a few thousand levels down: a 500 and a logged RangeError.
  test.each([
    ["a call asking for progress, arguments nested 5,000 deep", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"query","_meta":{"progressToken":1},"arguments":{"sql":"select 1","x":${deep(5000)}}}}`,
      200, /^error SX400: arguments are nested more than 32 levels deep/],
    ["a batch of one call, arguments nested 5,000 deep", `[{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select 1","x":${deep(5000)}}}}]`,
      200, /^error SX400: arguments are nested more than 32 levels deep/],
    ["a call asking for progress, arguments nested 300,000 deep", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"query","_meta":{"progressToken":1},"arguments":{"sql":"select 1","x":${deep(300_000)}}}}`,
      200, /^Invalid arguments for tool query: arguments contain more than the maximum of 10000 elements/],
    ["arrays nested 300,000 deep", deep(300_000), 400, /^Bad Request: JSON-RPC batch contains an invalid message/],
    ["an id nested 300,000 deep", `{"jsonrpc":"2.0","id":${deep(300_000)},"method":"tools/list"}`, 400, /^Bad Request: the request body is not a valid JSON-RPC message/],
  ])("%s: never a 500", async (_what, body, status, answer) => {
    const before = logLines.length;
    const res = await raw([(await requestHead(withLength("application/json", body))) + body]);
    expect(res.status).toBe(status);
    const [message] = messages(res.body);
    expect(message!.result?.content[0]!.text ?? message!.error?.message).toMatch(answer);
    expect(res.text).not.toMatch(/RangeError|at .*\.(ts|mjs|js):\d+/);
    expect(failuresSince(before).filter((l) => /RangeError|Internal/.test(l))).toEqual([]);
    await healthy();
  });

  test("an event-stream answer to a client that asked for Connection: close ends with the socket closed", async () => {
    // The SDK's streams carry 'connection: keep-alive', which kept the socket open after the
    // answer until the keep-alive timeout (5 s): a client reading to the end waited for it.
    const progress = CALL.replace('"arguments"', '"_meta":{"progressToken":7},"arguments"');
    for (const body of [progress, `[${CALL}]`]) {
      const res = await raw([(await requestHead(withLength("application/json", body))) + body]);
      expect(res.status).toBe(200);
      expect(res.head).toMatch(/content-type: text\/event-stream/i);
      expect(res.head).not.toMatch(/connection: keep-alive/i);
      expect(messages(res.body)[0]!.result?.structuredContent).toMatchObject({ rows: [[1]] });
      expect(res.closedAfterMs).toBeLessThan(2500);
    }
  });
});

describe("requests the SDK refuses", () => {
  // The SDK reports each refusal through the same onerror as its own failures: they were logged
  // as 'request failed' errors with a stack, one per bad request. They are the client's mistake.
  test.each([
    ["an empty batch", "application/json", "[]", 400, /^Bad Request: empty JSON-RPC batch/],
    ["an empty object", "application/json", "{}", 400, /^Bad Request: the request body is not a valid JSON-RPC message/],
    ["a batch holding an empty batch", "application/json", "[[]]", 400, /^Bad Request: JSON-RPC batch contains an invalid message/],
    ["a fractional id", "application/json", CALL.replace('"id":1', '"id":1.5'), 400, /^Bad Request: the request body is not a valid JSON-RPC message/],
    ["a null id", "application/json", CALL.replace('"id":1', '"id":null'), 400, /^Bad Request: the request body is not a valid JSON-RPC message/],
    ["an id past a double (1e400)", "application/json", CALL.replace('"id":1', '"id":1e400'), 400, /^Bad Request: the request body is not a valid JSON-RPC message/],
    ["a +json media type", "application/vnd.api+json", CALL, 415, /^Unsupported Media Type/],
    ["no media type", "", CALL, 415, /^Unsupported Media Type/],
  ])("%s: a 4xx JSON-RPC error, nothing logged as a failure", async (what, type, body, status, answer) => {
    const before = logLines.length;
    const head = await requestHead(type ? withLength(type, body) : `Content-Length: ${Buffer.byteLength(body)}\r\n`);
    const res = await raw([head + body]);
    expect(res.status, what).toBe(status);
    expect(messages(res.body)[0]!.error?.message, what).toMatch(answer);
    expect(failuresSince(before), what).toEqual([]);
    // Still visible to an operator who asks for debug lines, with the SDK's reason.
    expect(logLines.slice(before).some((l) => /mcp request refused/.test(l) && /"level":20/.test(l)), what).toBe(true);
  });

  test("an Accept without event streams, PUT, and a 2026 version header without the envelope: 4xx, nothing logged as a failure", async () => {
    const before = logLines.length;
    const notAccepted = await raw([(await requestHead(withLength("application/json", CALL))).replace("Accept: application/json, text/event-stream", "Accept: application/json") + CALL]);
    expect(notAccepted.status).toBe(406);
    const put = await raw([(await requestHead(withLength("application/json", CALL))).replace(/^POST/, "PUT") + CALL]);
    expect(put.status).toBe(405);
    expect(messages(put.body)[0]!.error?.message).toBe("Method not allowed.");
    const modern = await raw([(await requestHead(withLength("application/json", CALL), { version: "2026-07-28" })) + CALL]);
    expect(modern.status).toBe(400);
    expect(messages(modern.body)[0]!.error?.message).toMatch(/missing the required per-request envelope/);
    expect(failuresSince(before)).toEqual([]);
    await healthy();
  });
});

describe("body sizes and transfer codings", () => {

  // express.json refuses a body past the limit only once it has read and thrown away all of it:
  // a client that declared 10^16 bytes (or streamed chunks without end) and sent no more waited
  // for Node's request timeout, five minutes, while the server read whatever came.
  test.each([
    ["a 16-digit Content-Length", "Content-Type: application/json\r\nContent-Length: 9999999999999999\r\n", true],
    ["a 16-digit Content-Length on a keep-alive connection", "Content-Type: application/json\r\nContent-Length: 9999999999999999\r\n", false],
    ["2 MB with Content-Encoding: identity", "Content-Type: application/json\r\nContent-Encoding: identity\r\nContent-Length: 2000000\r\n", true],
    ["2 MB in latin1", "Content-Type: application/json; charset=latin1\r\nContent-Length: 2000000\r\n", true],
    ["2 MB, leading zeros", "Content-Type: application/json\r\nContent-Length: 0002000000\r\n", true],
  ])("%s past the limit, only a few bytes sent: 413 at once, the socket closed", async (_what, headers, close) => {
    const before = logLines.length;
    const res = await raw([(await requestHead(headers, { close })) + CALL]);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: "SX413", message: "request body is too large" });
    expect(res.closedAfterMs).toBeLessThan(2000);
    expect(failuresSince(before)).toEqual([]);
  });

  test("a gzip body that inflates past the limit, on a keep-alive connection, most of it not sent: 413 at once, the socket closed", async () => {
    // 1 MB is the decoded limit. ~20 MB of gzip declared, its first 64 KB sent (inflating to ~60
    // MB of spaces): the rest was read and thrown away after the 413, for as long as it came.
    const { gzipSync } = await import("node:zlib");
    const zipped = gzipSync(Buffer.from(`[${" ".repeat(64_000_000)}]`));
    const head = await requestHead(`Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${zipped.length * 300}\r\n`, { close: false });
    const before = logLines.length;
    const res = await raw([head, zipped.subarray(0, 64_000)]);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: "SX413", message: "request body is too large" });
    expect(res.closedAfterMs).toBeLessThan(2000);
    // Compressed bytes that inflate to nothing (empty stored deflate blocks, 5 bytes each) are
    // bounded too: ~1.5 MB of them is refused once past the limit, not read to the end.
    const gzipHead = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
    const empty = Buffer.concat([gzipHead, Buffer.alloc(300_000 * 5).fill(Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]))]);
    const nothing = await raw([await requestHead(`Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${empty.length * 10}\r\n`, { close: false }), empty]);
    expect(nothing.status).toBe(413);
    expect(nothing.closedAfterMs).toBeLessThan(2000);
    expect(failuresSince(before)).toEqual([]);
    await healthy();
  });

  test("a call compressed with gzip, deflate or br is answered; bytes that are not what they claim are SX400, nothing logged as a failure", async () => {
    const zlib = await import("node:zlib");
    for (const [coding, zip] of [["gzip", zlib.gzipSync], ["GZIP", zlib.gzipSync], ["deflate", zlib.deflateSync], ["br", zlib.brotliCompressSync]] as const) {
      const body = zip(Buffer.from(CALL));
      const res = await raw([await requestHead(`Content-Type: application/json\r\nContent-Encoding: ${coding}\r\nContent-Length: ${body.length}\r\n`), body]);
      expect(res.status, coding).toBe(200);
      expect(messages(res.body)[0]!.result?.structuredContent, coding).toMatchObject({ rows: [[1]] });
    }
    const chunked = zlib.gzipSync(Buffer.from(CALL));
    const viaChunks = await raw([await requestHead("Content-Type: application/json\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
      `${chunked.length.toString(16)}\r\n`, chunked, "\r\n0\r\n\r\n"]);
    expect(viaChunks.status).toBe(200);
    const before = logLines.length;
    for (const coding of ["gzip", "deflate", "br"]) {
      const res = await raw([await requestHead(`Content-Type: application/json\r\nContent-Encoding: ${coding}\r\nContent-Length: ${CALL.length}\r\n`) + CALL]);
      expect(res.status, coding).toBe(400);
      expect(JSON.parse(res.body), coding).toMatchObject({ code: "SX400", message: expect.stringMatching(new RegExp(`^request body refused: its ${coding} encoding is not valid`)) });
    }
    // A coding express.json does not inflate is still its 415-turned-SX400.
    const other = await raw([await requestHead(`Content-Type: application/json\r\nContent-Encoding: compress\r\nContent-Length: ${CALL.length}\r\n`) + CALL]);
    expect(other.status).toBe(400);
    expect(JSON.parse(other.body)).toMatchObject({ code: "SX400", message: 'request body refused: unsupported content encoding "compress"' });
    expect(failuresSince(before)).toEqual([]);
  });

  test("GET and DELETE with a JSON body, and POST of another type, past the limit: 413 at once too", async () => {
    for (const [method, headers] of [
      ["GET", "Content-Type: application/json\r\nContent-Length: 9999999999999999\r\n"],
      ["DELETE", "Content-Type: application/json\r\nContent-Length: 9999999999999999\r\n"],
      // The SDK's own reader took up to 4 MB before its 415.
      ["POST", "Content-Type: text/plain\r\nContent-Length: 3000000\r\n"],
    ]) {
      const res = await raw([(await requestHead(headers!)).replace(/^POST/, method!) + CALL]);
      expect(res.status, method).toBe(413);
      expect(res.closedAfterMs, method).toBeLessThan(2000);
    }
  });

  test("chunked bodies: a call is answered, an empty body is the SDK's 400, one streaming past the limit is 413 at once", async () => {
    const ok = await raw([(await requestHead("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")) + chunk(CALL.slice(0, 20)) + chunk(CALL.slice(20)) + "0\r\n\r\n"]);
    expect(ok.status).toBe(200);
    expect(messages(ok.body)[0]!.result?.structuredContent).toMatchObject({ rows: [[1]] });
    // A BOM split across chunks is still a BOM.
    const bom = await raw([(await requestHead("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")),
      Buffer.from("1\r\n"), Buffer.from([0xef]), Buffer.from("\r\n2\r\n"), Buffer.from([0xbb, 0xbf]), Buffer.from(`\r\n${chunk(CALL)}0\r\n\r\n`)]);
    expect(bom.status).toBe(200);
    const empty = await raw([(await requestHead("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")) + "0\r\n\r\n"]);
    expect(empty.status).toBe(400);
    expect(messages(empty.body)[0]!.error?.message).toMatch(/not a valid JSON-RPC message/);
    // 1.2 MB of an array that never ends, and no last chunk.
    const before = logLines.length;
    const endless = await raw([(await requestHead("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", { close: false })) + chunk(`[${" ".repeat(600_000)}`) + chunk(" ".repeat(600_000))]);
    expect(endless.status).toBe(413);
    expect(endless.closedAfterMs).toBeLessThan(2000);
    expect(failuresSince(before)).toEqual([]);
    await healthy();
  });

  // Requests the fast reader passed to express.json (or, for another type, the SDK) streamed
  // past the limit unanswered until the request timeout: an identity coding, a JSON type with
  // another parameter or charset, a compressed body declared far past any compressed size.
  test.each([
    ["Content-Encoding: identity", "Content-Type: application/json\r\nContent-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"],
    ["a JSON type with another parameter", "Content-Type: application/json; charset=utf-8; x=1\r\nTransfer-Encoding: chunked\r\n"],
    ["UTF-16", "Content-Type: application/json; charset=utf-16le\r\nTransfer-Encoding: chunked\r\n"],
    ["gzip in UTF-16", "Content-Type: application/json; charset=utf-16le\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"],
    ["text/plain", "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"],
  ])("chunks without end, %s: 413 once past the limit, the socket closed", async (_what, headers) => {
    const before = logLines.length;
    const endless = await raw([(await requestHead(headers, { close: false })) + chunk(" ".repeat(600_000)) + chunk(" ".repeat(600_000))]);
    expect(endless.status).toBe(413);
    expect(endless.closedAfterMs).toBeLessThan(2000);
    expect(failuresSince(before)).toEqual([]);
  });

  test("a gzip body declared past any compressed size within the limit, a few bytes sent: 413 at once, the socket closed", async () => {
    const res = await raw([(await requestHead("Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 9999999999999999\r\n", { close: false })), Buffer.from([0x1f, 0x8b])]);
    expect(res.status).toBe(413);
    expect(res.closedAfterMs).toBeLessThan(2000);
  });

  test.each(["destroy", "half-close"])("a chunked body cut short, then %s: no 500, nothing logged as a failure", async (how) => {
    const before = logLines.length;
    const { port } = new URL(server.url);
    const head = await requestHead("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", { close: false });
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      const socket = net.connect(Number(port), "127.0.0.1", () => {
        socket.write(head + chunk(CALL.slice(0, 30)));
        setTimeout(() => (how === "destroy" ? (socket.destroy(), resolve("")) : socket.end()), 100);
      });
      socket.on("data", (d) => void (text += String(d)));
      socket.on("close", () => resolve(text));
      socket.on("error", () => resolve(text));
    });
    expect(answer).not.toMatch(/^HTTP\/1\.1 5/);
    // Half-closed inside a chunk: Node's parser answers its own bare 400 (the chunked framing is broken).
    if (how === "half-close") expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    await new Promise((r) => setTimeout(r, 300));
    expect(failuresSince(before)).toEqual([]);
    await healthy();
  });

  test("a transfer coding other than chunked (Node would pass it through undecoded) is SX400", async () => {
    const res = await raw([(await requestHead("Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n")) + chunk(CALL) + "0\r\n\r\n"]);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ code: "SX400", message: 'request body refused: unsupported transfer coding "gzip, chunked"' });
    const upper = await raw([(await requestHead("Content-Type: application/json\r\nTransfer-Encoding: Chunked\r\n")) + chunk(CALL) + "0\r\n\r\n"]);
    expect(upper.status).toBe(200);
  });
});

describe("what already held (kept as a corpus)", () => {
  test.each([
    ["a plus sign", "Content-Length: +112\r\n"],
    ["two different Content-Lengths", "Content-Length: 112\r\nContent-Length: 5\r\n"],
    ["a Content-Length list", "Content-Length: 112, 112\r\n"],
    ["a 25-digit Content-Length", "Content-Length: 9999999999999999999999999\r\n"],
    ["Content-Length and Transfer-Encoding both", "Content-Length: 112\r\nTransfer-Encoding: chunked\r\n"],
  ])("%s: Node's parser answers 400 before any route; the server answers on", async (_what, lengths) => {
    const before = logLines.length;
    const res = await raw([(await requestHead(`Content-Type: application/json\r\n${lengths}`)) + CALL]);
    expect(res.status).toBe(400);
    expect(res.closedAfterMs).toBeLessThan(2000);
    expect(failuresSince(before)).toEqual([]);
    await healthy();
  });

  test("charsets, BOMs, scalars and bytes that are not UTF-8: the lean reader and express.json answer alike, each a 200 or a 4xx", async () => {
    const list = '{"jsonrpc":"2.0","id":2,"method":"tools/list"}';
    const bad = Buffer.concat([Buffer.from(CALL.slice(0, 80)), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(CALL.slice(80))]);
    const cases: [string, string, Buffer, number][] = [
      ["UTF8 (no dash)", "application/json; charset=UTF8", Buffer.from(list), 400],
      ["utf-16le", "application/json; charset=utf-16le", Buffer.from(list, "utf16le"), 200],
      ["a BOM, then whitespace", "application/json", Buffer.from(`\uFEFF \n\t${list}`), 200],
      ["two BOMs", "application/json", Buffer.from(`\uFEFF\uFEFF${list}`), 400],
      ["a number", "application/json", Buffer.from("1"), 400],
      ["null", "application/json", Buffer.from("null"), 400],
      ["bytes that are not UTF-8 inside the SQL", "application/json", bad, 200],
    ];
    for (const [what, type, body, status] of cases) {
      const answers = [];
      for (const extra of ["", "Content-Encoding: identity\r\n"]) {
        const res = await raw([await requestHead(`Content-Type: ${type}\r\nContent-Length: ${body.length}\r\n${extra}`), body]);
        expect(res.status, what).toBe(status);
        expect(res.body, what).not.toMatch(/at .*\.(ts|mjs|js):\d+/);
        answers.push(res.body.replace(/DATA-[0-9a-f]{12}/g, "DATA").replace(/[\d.]+ ms|"elapsed_ms":[\d.]+/g, "T"));
      }
      expect(answers[0], what).toBe(answers[1]);
    }
    // Replacement characters reach PostgreSQL, which parses the rest: the tool's own SQL error.
    const res = await raw([await requestHead(`Content-Type: application/json\r\nContent-Length: ${bad.length}\r\n`), bad]);
    expect(messages(res.body)[0]!.result?.isError).toBe(true);
  });

  test("Host values: 300 passing ones churn the per-Host caches, then a foreign one, a trailing dot or an IPv4-mapped address is still refused; the 401 names the alias asked for", async () => {
    const { port } = new URL(server.url);
    const list = '{"jsonrpc":"2.0","id":2,"method":"tools/list"}';
    const withHost = async (host: string) => raw([(await requestHead(withLength("application/json", list))).replace(`Host: 127.0.0.1:${port}`, `Host: ${host}`) + list]);
    expect((await withHost("evil.example")).status).toBe(403);
    for (let p = 1; p <= 300; p++) {
      const res = await raw([`POST /mcp HTTP/1.1\r\nHost: localhost:${p}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`]);
      expect(res.status).toBe(401);
    }
    for (const host of ["evil.example", `evil.example:${port}`, `localhost.:${port}`, `[::ffff:127.0.0.1]:${port}`, `127.0.0.1.nip.io:${port}`]) {
      const res = await withHost(host);
      expect(res.status, host).toBe(403);
      expect(messages(res.body)[0]!.error?.message, host).toMatch(/^Invalid Host/);
    }
    for (const host of [`LOCALHOST:${port}`, `[::1]:${port}`, `127.0.0.1:${port}`]) expect((await withHost(host)).status, host).toBe(200);
    // Past the 256 kept values, the metadata each 401 points to still follows that request's Host.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      const res = await raw([`POST /mcp HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`]);
      expect(res.status).toBe(401);
      expect(res.head, host).toMatch(new RegExp(`resource_metadata="http://${host.replace(/[[\]]/g, "\\$&")}/\\.well-known/oauth-protected-resource/mcp"`, "i"));
    }
    const none = await raw([`POST /mcp HTTP/1.0\r\nContent-Length: 0\r\n\r\n`]);
    expect(none.status).toBe(400);
  });

  test("pipelined requests on one keep-alive socket are answered in order, a malformed one between them included", async () => {
    const list = '{"jsonrpc":"2.0","id":2,"method":"tools/list"}';
    const res = await raw([
      (await requestHead(withLength("application/json", CALL), { close: false })) + CALL +
      (await requestHead(withLength("application/json", "{nope"), { close: false })) + "{nope" +
      (await requestHead(withLength("application/json", list))) + list,
    ]);
    const statuses = [...res.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 400, 200]);
    expect(res.text).toContain('"rows":[[1]]');
    expect(res.text).toContain('{"code":"SX400","message":"request body is not valid JSON"}');
    expect(res.text).toContain('"name":"list_schemas"');
    expect(res.closedAfterMs).toBeLessThan(3000);
  });

  test("a body trickling in a byte at a time holds only its own request: others are answered meanwhile, it is answered once whole", async () => {
    const { port } = new URL(server.url);
    const head = await requestHead(withLength("application/json", CALL));
    const socket = net.connect(Number(port), "127.0.0.1");
    let text = "";
    socket.on("data", (d) => void (text += String(d)));
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(head);
    const started = performance.now();
    let others = 0;
    for (let i = 0; i < CALL.length; i++) {
      socket.write(CALL[i]!);
      if (i % 10 === 0) {
        const quick = performance.now();
        await healthy();
        expect(performance.now() - quick).toBeLessThan(1000);
        others++;
      } else await new Promise((r) => setTimeout(r, 5));
    }
    await closed;
    expect(others).toBeGreaterThan(5);
    expect(performance.now() - started).toBeGreaterThan(500);
    expect(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]).toBe("200");
    expect(text).toContain('"rows":[[1]]');
  });

  test("a client gone in the middle of a call: the call ends (cancelled) and is audited, nothing is logged as a failure, the server answers on", async () => {
    // A caller gone mid-call cancels its SQL (test/mcp/cancel.test.ts): audited as refused (SX499),
    // or as ok when the statement ended before the client was gone.
    const before = logLines.length;
    const sql = "select count(*) > 0 as mcp_body_gone from generate_series(1, 3000000)";
    const slow = CALL.replace("select 1 as one", sql);
    const { port } = new URL(server.url);
    const head = await requestHead(withLength("application/json", slow));
    const principal = `mcp-body-${tokenNo}`; // requestHead's token
    const socket = net.connect(Number(port), "127.0.0.1", () => socket.write(head + slow));
    socket.on("error", () => {});
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await expect.poll(async () => (await db.admin.query("select outcome, error_code from sextant.audit_events where principal = $1 and sql = $2", [principal, sql])).rows
      .map((r) => `${r.outcome} ${r.error_code ?? ""}`.trim()), { timeout: 20_000 })
      .toSatisfy((outcomes: string[]) => outcomes.length === 1 && ["ok", "refused SX499"].includes(outcomes[0]!));
    await new Promise((r) => setTimeout(r, 200));
    expect(failuresSince(before)).toEqual([]);
    await healthy();
    const after = await raw([(await requestHead(withLength("application/json", CALL))) + CALL]);
    expect(after.status).toBe(200);
  });

  test("the direct path and the SDK's answer hostile calls alike: odd ids, bad arguments, unknown tools, SQL errors", async () => {
    const token = await createToken(db, "acme", "mcp-body-paths", "analyst");
    const post = async (id: unknown, params: Record<string, unknown>) => {
      const res = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}`, "mcp-protocol-version": "2025-06-18" },
        body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params }),
      });
      const answer = JSON.stringify(messages(await res.text())[0]);
      return { status: res.status, answer: answer.replace(/DATA-[0-9a-f]{12}/g, "DATA").replace(/[\d.]+ ms|"elapsed_ms":[\d.]+/g, "T") };
    };
    const cases: [string, unknown, Record<string, unknown>][] = [
      ["id 0", 0, { name: "query", arguments: { sql: "select 1 as one" } }],
      ["id -1", -1, { name: "query", arguments: { sql: "select 1 as one" } }],
      ["an empty string id", "", { name: "query", arguments: { sql: "select 1 as one" } }],
      ["a 2,000-character id", "x".repeat(2000), { name: "whoami", arguments: {} }],
      ["no arguments", 1, { name: "whoami" }],
      ["no sql", 1, { name: "query", arguments: {} }],
      ["sql a number", 1, { name: "query", arguments: { sql: 1 } }],
      ["an unknown argument", 1, { name: "query", arguments: { sql: "select 1 as one", bogus: true } }],
      ["an unknown tool", 1, { name: "nope", arguments: {} }],
      ["a tool name with a trailing space", 1, { name: "query ", arguments: { sql: "select 1" } }],
      ["a SQL error", 1, { name: "query", arguments: { sql: "select * from no_such_table" } }],
      ["a NUL in the SQL", 1, { name: "query", arguments: { sql: "select 1 -- \u0000" } }],
      ["a write", 1, { name: "query", arguments: { sql: "delete from acme_sales.orders" } }],
      ["max_rows -1", 1, { name: "query", arguments: { sql: "select 1", max_rows: -1 } }],
      ["arguments an array", 1, { name: "query", arguments: ["select 1"] }],
    ];
    const taken = directCallsAnswered();
    for (const [what, id, params] of cases) {
      const direct = await post(id, params);
      const sdk = await post(id, { ...params, _meta: {} });
      expect(direct, what).toEqual(sdk);
      expect(direct.status, what).toBeLessThan(500);
    }
    // Those the direct path takes (the odd ids, no arguments, SQL errors, the NUL, the write) did not all fall through to the SDK.
    expect(directCallsAnswered() - taken).toBeGreaterThanOrEqual(8);
  });
});
