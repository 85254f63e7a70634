import { PassThrough, type Readable, type Writable } from "node:stream";
import type { CallToolResult } from "@modelcontextprotocol/server";
import { checkOutput, isObject, onlyKeys, tooManyElements, wireEncoding, wireResult } from "./directCall.ts";
import { runTool, schemasOf, type ToolDeps } from "./registerTools.ts";
import { allTools } from "./server.ts";

/** The SDK's stdio line limit (its ReadBuffer's default): a longer partial line is handed on as it is. */
const MAX_PENDING = 10 * 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * The direct path of `sextant mcp` (stdio), the counterpart of directCall.ts for /mcp: it reads
 * stdin line by line ahead of the SDK's serveStdio and answers a plain 2025-era `tools/call`
 * itself — one request, `jsonrpc` "2.0", an id that is a string or a safe integer, params of only
 * `name` and `arguments` (so no `_meta`, progress token or task), a tool the server offers,
 * arguments its input schema accepts — with the same handler (runTool), validators, output check
 * and wire form as the SDK, written as one JSON line. Only once the SDK opened a 2025-era session:
 * the first line was `initialize` without `_meta` in its params (so no 2026-07-28 envelope claim)
 * and the client then sent `notifications/initialized`. Every other line, and every line of a
 * 2026-07-28 connection, is handed to the SDK byte for byte through `sdkInput` (the stream its
 * transport reads instead of stdin), errors and all. The stdio server offers every tool with the
 * one `deps` (MCP Apps only add `_meta` to the listing and their resources; a call's result is the
 * same), so a host that declared the apps is served directly too.
 */
export function stdioDirect(deps: ToolDeps, input: Readable, output: Writable, onCall?: (tool: string) => void) {
  const sdkInput = new PassThrough();
  let phase: "opening" | "initializing" | "open" | "sdk" = "opening";
  let pending: Buffer | undefined;
  let forwarding = false; // inside a line longer than MAX_PENDING: the rest goes to the SDK too
  let closed = false;
  const inFlight = new Map<string | number, { abort: AbortController; done: Promise<void> }>();

  const parse = (line: Buffer): unknown => {
    try {
      return JSON.parse(line.toString("utf8"));
    } catch {
      return undefined;
    }
  };

  /** Watches the opening exchange (the SDK answers it); whether the line may be a call to answer here. */
  function mayTake(line: Buffer): boolean {
    if (phase === "open") return line.includes('"tools/call"');
    if (phase === "sdk") return false;
    const message = parse(line);
    if (phase === "opening") {
      if (message === undefined) return false; // not JSON: the SDK skips it, and the next line opens
      const legacy = isObject(message) && message.method === "initialize" && message.id !== undefined && isObject(message.params) && !("_meta" in message.params);
      phase = legacy ? "initializing" : "sdk";
    } else if (isObject(message) && message.method === "notifications/initialized" && message.id === undefined) {
      phase = "open";
    }
    return false;
  }

  /**
   * The call, when the SDK would run the tool on it; undefined (nothing done) otherwise. Decided
   * synchronously (the compiled validators are), so the lines handed on keep their order.
   */
  function plan(line: Buffer) {
    const body = parse(line);
    if (!isObject(body) || !onlyKeys(body, ["jsonrpc", "id", "method", "params"]) || body.jsonrpc !== "2.0" || body.method !== "tools/call") return;
    const id = body.id;
    if (typeof id !== "string" && !Number.isSafeInteger(id)) return;
    const params = body.params;
    if (!isObject(params) || !onlyKeys(params, ["name", "arguments"]) || typeof params.name !== "string") return;
    if (params.arguments !== undefined && !isObject(params.arguments)) return;
    if (tooManyElements(params.arguments)) return;
    const spec = allTools.find((t) => t.name === params.name);
    if (!spec) return;
    const checked = schemasOf(spec).inputSchema["~standard"].validate(params.arguments ?? {});
    if (checked instanceof Promise || checked.issues) return;
    return { id: id as string | number, spec, input: checked.value };
  }

  /** Runs a planned call and writes its answer as one line. */
  async function answer(call: NonNullable<ReturnType<typeof plan>>): Promise<void> {
    onCall?.(call.spec.name);
    const abort = new AbortController();
    let settle!: () => void;
    inFlight.set(call.id, { abort, done: new Promise<void>((r) => (settle = r)) });
    try {
      let result: CallToolResult;
      try {
        result = await checkOutput(call.spec, await runTool(call.spec, deps, undefined, call.input, { signal: abort.signal }));
      } catch (error) {
        // What the SDK's tools/call handler answers for a handler that throws (createToolError).
        result = { content: [{ type: "text", text: error instanceof Error ? error.message : String(error) }], isError: true };
      }
      // Cancelled, or stdin ended: the SDK does not answer such a request either.
      if (!abort.signal.aborted && !closed) {
        const line = `${JSON.stringify({ result: wireResult(result), jsonrpc: "2.0", id: call.id })}\n`;
        output.write(line, wireEncoding(line));
      }
    } finally {
      inFlight.delete(call.id);
      settle();
    }
  }

  /** notifications/cancelled of a call answered here: abort it (the notification still goes to the SDK). */
  function cancels(line: Buffer): void {
    if (inFlight.size === 0 || !line.includes('"notifications/cancelled"')) return;
    const message = parse(line);
    if (!isObject(message) || message.method !== "notifications/cancelled" || !isObject(message.params)) return;
    inFlight.get(message.params.requestId as string | number)?.abort.abort();
  }

  function onLine(line: Buffer): void {
    const call = !closed && mayTake(line) ? plan(line) : undefined;
    if (call && !inFlight.has(call.id)) {
      void answer(call).catch(() => {}); // answer() catches the tool's errors itself
      return;
    }
    cancels(line);
    sdkInput.write(line);
  }

  input.on("data", (chunk: Buffer) => {
    let buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = undefined;
    for (let index = buffer.indexOf(NEWLINE); index !== -1; index = buffer.indexOf(NEWLINE)) {
      const line = buffer.subarray(0, index + 1);
      buffer = buffer.subarray(index + 1);
      if (forwarding) {
        forwarding = false;
        sdkInput.write(line);
      } else onLine(line);
    }
    if (buffer.length === 0) return;
    if (forwarding || buffer.length > MAX_PENDING) {
      forwarding = true;
      sdkInput.write(buffer); // the SDK's own limit and errors decide
    } else pending = buffer;
  });
  input.on("end", () => {
    if (pending) sdkInput.write(pending);
    sdkInput.end();
  });
  input.on("error", (error) => sdkInput.destroy(error));

  return {
    /** What the SDK's transport reads instead of stdin. */
    sdkInput,
    /** Stops answering; in-flight calls are aborted (not answered, as the SDK does) and awaited, so their audit rows are recorded. */
    async close(): Promise<void> {
      closed = true;
      const calls = [...inFlight.values()];
      for (const c of calls) c.abort.abort();
      await Promise.all(calls.map((c) => c.done));
    },
  };
}
