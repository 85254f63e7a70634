import type { IncomingMessage, ServerResponse } from "node:http";
import { SUPPORTED_PROTOCOL_VERSIONS, type CallToolResult } from "@modelcontextprotocol/server";
import { clientGone } from "../http/clientGone.ts";
import { appsOptIn, APPS_HEADER } from "./apps/index.ts";
import { MAX_TOOL_INPUT_ELEMENTS, runTool, schemasOf, type ToolDeps } from "./registerTools.ts";
import { allTools } from "./server.ts";
import { boundToolGroups, GROUPS_HEADER, parseToolGroups } from "./toolGroups.ts";
import type { ToolSpec } from "./toolSpec.ts";

type AuthInfo = { extra?: Record<string, unknown> } | undefined;

/** A call the direct path takes: everything the SDK would have checked has passed. */
interface Plan {
  id: string | number;
  spec: ToolSpec;
  input: unknown;
  deps: ToolDeps;
}

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
export const onlyKeys = (o: Record<string, unknown>, allowed: readonly string[]) => Object.keys(o).every((k) => allowed.includes(k));
const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === "string" ? v : undefined;
};

/**
 * How to write `text` (of `bytes` UTF-8 bytes) to a socket: as latin1 when it is all ASCII (its
 * UTF-8 is as long as it), the same bytes copied one for one, instead of UTF-8 encoding every
 * character (a 186 KB answer: 0.36 -> 0.03 ms on Node 22); otherwise as UTF-8.
 */
export function wireEncoding(text: string, bytes = Buffer.byteLength(text)): BufferEncoding {
  return bytes === text.length ? "latin1" : "utf8";
}

/**
 * The SDK's wire form of a tools/call result on the 2025 era (its codec parses the result with
 * zod, which puts the schema's keys first, in the schema's order, and drops unknown keys of a
 * text block): `_meta`, `content`, `structuredContent`, `isError`, then any other key.
 */
export function wireResult(result: CallToolResult): Record<string, unknown> {
  const { _meta, content, structuredContent, isError, ...rest } = result as CallToolResult & Record<string, unknown>;
  return {
    ...(_meta !== undefined && { _meta }),
    content: content.map((c) =>
      c.type === "text"
        ? { type: c.type, text: c.text, ...(c.annotations !== undefined && { annotations: c.annotations }), ...(c._meta !== undefined && { _meta: c._meta }) }
        : c),
    ...(structuredContent !== undefined && { structuredContent }),
    ...(isError !== undefined && { isError }),
    ...rest,
  };
}

/**
 * Whether `args` holds more than `max` array elements and object members together: the SDK's
 * count (toolInputElementCount), stopping as soon as it is past. A call over the bound is the
 * SDK's to refuse (its own error), so the direct paths leave it to it.
 */
export function tooManyElements(args: unknown, max = MAX_TOOL_INPUT_ELEMENTS): boolean {
  let count = 0;
  const stack: unknown[] = [args];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object") continue;
    const children = Array.isArray(node) ? node : Object.values(node);
    count += children.length;
    if (count > max) return true;
    for (const child of children) if (child !== null && typeof child === "object") stack.push(child);
  }
  return false;
}

/** The SDK's issue text (validateStandardSchema): `path: message`, joined with ", ". */
const issueText = (issues: readonly { message: string; path?: readonly (PropertyKey | { key: PropertyKey })[] }[]) =>
  issues.map((i) => (i.path?.length ? `${i.path.map((p) => String(typeof p === "object" ? p.key : p)).join(".")}: ${i.message}` : i.message)).join(", ");

/** What the SDK's tools/call handler makes of the tool's result (validateToolOutput, then its createToolError). */
export async function checkOutput(spec: ToolSpec, result: CallToolResult): Promise<CallToolResult> {
  if (result.isError) return result;
  let message: string | undefined;
  if (result.structuredContent === undefined) {
    message = `Output validation error: Tool ${spec.name} has an output schema but no structured content was provided`;
  } else {
    const checked = await schemasOf(spec).outputSchema["~standard"].validate(result.structuredContent);
    if (checked.issues?.length) message = `Output validation error: Invalid structured content for tool ${spec.name}: ${issueText(checked.issues)}`;
  }
  return message === undefined ? result : { content: [{ type: "text", text: message }], isError: true };
}

/**
 * The direct path of /mcp for the common call: one 2025-era JSON-RPC `tools/call` request, no
 * progress token, a tool the request's groups include, arguments its input schema accepts. It
 * runs the same handler as the SDK (runTool: audit, rate limit, role, shaping), checks the
 * result against the tool's output schema as the SDK does, and writes the JSON-RPC answer
 * straight to `res` — without the web Request, the transport, the per-request server and the
 * SDK's message parsing, which cost more CPU than the rest of a point lookup. Anything else
 * (and anything in doubt) returns false before any work, and the SDK answers it, errors and all.
 * Runs after the route's Host/Origin checks, bearer auth, the groups check and the body parser.
 */
export function directCalls(depsFor: (apps: boolean) => ToolDeps) {

  /** The call, when the SDK's legacy JSON answer would be a tools/call result; undefined otherwise. */
  async function plan(req: IncomingMessage, body: unknown, authInfo: AuthInfo): Promise<Plan | undefined> {
    // The transport's checks (406, 415, 400 on a bad version) and the entry's era: a request
    // without `_meta` (so without the 2026 envelope claim) whose header names a version before
    // 2026-07-28 is legacy (classifyInboundRequest; not called: its zod checks of the body as a
    // response and a request cost more than the rest of this function).
    const accept = header(req, "accept");
    const version = header(req, "mcp-protocol-version");
    if (!accept?.includes("application/json") || !accept.includes("text/event-stream")) return;
    if (version === undefined || !SUPPORTED_PROTOCOL_VERSIONS.includes(version) || version >= "2026-07-28") return;
    if (req.headers["mcp-session-id"] !== undefined) return;
    if (!isObject(body) || !onlyKeys(body, ["jsonrpc", "id", "method", "params"]) || body.jsonrpc !== "2.0" || body.method !== "tools/call") return;
    const id = body.id;
    if (typeof id !== "string" && !Number.isSafeInteger(id)) return;
    const params = body.params;
    if (!isObject(params) || !onlyKeys(params, ["name", "arguments"]) || typeof params.name !== "string") return;
    if (params.arguments !== undefined && !isObject(params.arguments)) return;
    if (tooManyElements(params.arguments)) return;
    // The server the SDK would build: the request's groups within the token's, Apps or not.
    let groups: readonly string[];
    const query = req.url?.includes("?") ? new URLSearchParams(req.url.slice(req.url.indexOf("?") + 1)) : undefined;
    try {
      const principal = authInfo?.extra?.principal as { toolGroups?: readonly string[] } | undefined;
      if (!principal) return;
      groups = boundToolGroups(parseToolGroups(header(req, GROUPS_HEADER) ?? query?.get("groups") ?? undefined), principal.toolGroups);
    } catch {
      return;
    }
    const spec = allTools.find((t) => t.name === params.name && groups.includes(t.group));
    if (!spec) return;
    const checked = await schemasOf(spec).inputSchema["~standard"].validate(params.arguments ?? {});
    if (checked.issues) return;
    const apps = appsOptIn(header(req, APPS_HEADER), query?.get("apps") ?? undefined);
    return { id: id as string | number, spec, input: checked.value, deps: depsFor(apps) };
  }

  return {
    /**
     * Answers `req` when it is a call the direct path takes, and says so; false when nothing was
     * done and the SDK must answer. `body` is the parsed JSON body, `authInfo` what bearer auth set.
     */
    async answer(req: IncomingMessage, res: ServerResponse, body: unknown, authInfo: AuthInfo): Promise<boolean> {
      const call = await plan(req, body, authInfo);
      if (!call) return false;
      answered++;
      const signal = clientGone(res);
      const result = await runTool(call.spec, call.deps, authInfo, call.input, { traceparent: req.headers.traceparent, signal });
      // Sent as text: Node encodes it into the socket's write, no Buffer copy of a ~300 KB answer first.
      const payload = JSON.stringify({ result: wireResult(await checkOutput(call.spec, result)), jsonrpc: "2.0", id: call.id });
      const bytes = Buffer.byteLength(payload);
      res.writeHead(200, { "content-type": "application/json", "content-length": String(bytes) }).end(payload, wireEncoding(payload, bytes));
      return true;
    },
  };
}

let answered = 0;
/** How many calls the direct path answered in this process (tests: which path a call took). */
export const directCallsAnswered = (): number => answered;
