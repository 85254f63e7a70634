import { hostHeaderValidation } from "@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js";
import { toNodeHandler } from "@modelcontextprotocol/node";
import { createMcpHandler, isJsonContentType, isLegacyRequest, ProtocolError, ProtocolErrorCode, WebStandardStreamableHTTPServerTransport, type McpServer } from "@modelcontextprotocol/server";
import express, { type Express, type Request, type Response } from "express";
import type { Authenticate } from "../auth/authenticate.ts";
import { bearerAuth, principalFromAuth } from "../auth/bearer.ts";
import type { Config } from "../config.ts";
import { SextantError, toPublicError } from "../db/errors.ts";
import { jsonBody, limitBytes } from "../http/jsonBody.ts";
import { baseFor } from "../oauth/hostAliases.ts";
import { APPS_HEADER, appsOptIn, createMcpApps } from "./apps/index.ts";
import { directCalls } from "./directCall.ts";
import { originAllowed } from "./origins.ts";
import { callsRunning, type ToolDeps } from "./registerTools.ts";
import { createMcpServer } from "./server.ts";
import { boundToolGroups, GROUPS_HEADER, parseToolGroups } from "./toolGroups.ts";
import type { ToolGroup } from "./toolSpec.ts";

/** The SDK's per-exchange state on a server instance (fields of its Server class), reset before reuse. */
interface ExchangeState {
  _negotiatedProtocolVersion?: string;
  _boundFromTransport?: boolean;
  _clientCapabilities?: unknown;
  _clientVersion?: unknown;
  _supportedProtocolVersions?: string[];
  _loggingLevels?: Map<unknown, unknown>;
  onclose?: () => void;
}

const POOLED_PER_KEY = 32;

/**
 * Idle MCP servers per (era, tool groups): building one registers every tool (about 2 ms of
 * CPU, the largest cost of a call under load), so a request borrows a built one and gives it
 * back when its exchange closes. What a server keeps of an exchange (the protocol version and
 * client identity it negotiated) is reset to the built state before the next request, and
 * nothing of a caller lives on it: the principal comes with each request's auth. A server
 * whose exchange closed with a tool call still running (the client went away) is dropped, not
 * reused: that call must not reach the next request's exchange.
 */
export class ServerPool {
  private readonly idle = new Map<string, McpServer[]>();

  constructor(private readonly build: (groups: readonly ToolGroup[]) => McpServer) {}

  take(era: string, groups: readonly ToolGroup[]): McpServer {
    const key = `${era}:${groups.join(",")}`;
    const pooled = this.idle.get(key)?.pop();
    if (pooled) return pooled;
    const server = this.build(groups);
    const state = server.server as unknown as ExchangeState;
    const built = {
      version: state._negotiatedProtocolVersion,
      bound: state._boundFromTransport,
      capabilities: state._clientCapabilities,
      client: state._clientVersion,
      supported: state._supportedProtocolVersions,
    };
    // The SDK sets its own onclose per exchange and calls the one it found (this) at the end.
    state.onclose = () => {
      if (callsRunning(server) > 0) return;
      state._negotiatedProtocolVersion = built.version;
      state._boundFromTransport = built.bound;
      state._clientCapabilities = built.capabilities;
      state._clientVersion = built.client;
      state._supportedProtocolVersions = built.supported;
      state._loggingLevels?.clear();
      const list = this.idle.get(key) ?? [];
      if (list.length < POOLED_PER_KEY && !list.includes(server)) list.push(server);
      this.idle.set(key, list);
    };
    return server;
  }

  /** How many servers are idle (tests). */
  size(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  clear(): void {
    this.idle.clear();
  }
}

/**
 * Bearer auth whose 401 points at the protected-resource metadata under the name the client
 * used (a loopback alias of a loopback public URL); tokens are checked against the one resource.
 */
function authFor(deps: { authenticate: Authenticate; config: Config; resource?: { url: string; metadataUrl: string } }): express.RequestHandler {
  const byBase = new Map<string, express.RequestHandler>();
  // The handler per Host value seen (hosts that passed the route's checks; bounded): baseFor
  // parses the public URL and builds its aliases, the same answer for every request of a host.
  const byHost = new Map<string, express.RequestHandler>();
  const publicOrigin = new URL(deps.config.publicUrl).origin;
  return (req, res, next) => {
    const host = req.headers.host ?? "";
    let handler = byHost.get(host);
    if (!handler) {
      const base = baseFor(req.headers.host, deps.config.publicUrl);
      handler = byBase.get(base);
      if (!handler) {
        const resource = deps.resource && { url: deps.resource.url, metadataUrl: deps.resource.metadataUrl.replace(publicOrigin, new URL(base).origin) };
        byBase.set(base, (handler = bearerAuth(deps.authenticate, resource)));
      }
      if (byHost.size < 256) byHost.set(host, handler);
    }
    handler(req, res, next);
  };
}

/**
 * The SDK's Host check (DNS rebinding), run once per Host value: its verdict depends on the
 * value alone, so one that passed (at most 256 kept) passes again without parsing it as a URL.
 */
function hostCheck(allowedHostnames: string[]): express.RequestHandler {
  const check = hostHeaderValidation(allowedHostnames);
  const passed = new Set<string>();
  return (req, res, next) => {
    const host = req.headers.host;
    if (host !== undefined && passed.has(host)) return next();
    check(req, res, () => {
      if (host !== undefined && passed.size < 256) passed.add(host);
      next();
    });
  };
}

function jsonRpcError(res: Response, status: number, message: string, data?: Record<string, string>): void {
  res.status(status).json({ jsonrpc: "2.0", error: { code: -32000, message, ...(data ? { data } : {}) }, id: null });
}

/**
 * Whether a parsed body is one JSON-RPC request (with an id) that asked for no progress: its
 * answer can only be the one result, so a 2025-era exchange may send it as a JSON body.
 */
function singleRequestWithoutProgress(body: unknown): boolean {
  if (!body || typeof body !== "object" || Array.isArray(body)) return false;
  const m = body as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  if (m.jsonrpc !== "2.0" || typeof m.method !== "string" || (typeof m.id !== "string" && typeof m.id !== "number")) return false;
  const meta = m.params && typeof m.params === "object" ? (m.params as { _meta?: unknown })._meta : undefined;
  return !(meta && typeof meta === "object" && (meta as { progressToken?: unknown }).progressToken !== undefined);
}

/**
 * Whether an error the SDK reported through onerror is its refusal of the client's request (it
 * answered a 4xx: a malformed or empty batch, a message that is no JSON-RPC, a wrong Accept or
 * Content-Type, an unsupported version or method): the SDK reports those as it reports its own
 * failures, as plain Errors (its messages are the only mark) or ProtocolErrors.
 */
export function clientRefusal(error: unknown): boolean {
  if (error instanceof ProtocolError) return error.code !== ProtocolErrorCode.InternalError;
  if (!(error instanceof Error)) return false;
  return error.name === "ZodError" ||
    /^(Rejected |Not Acceptable|Unsupported Media Type|Invalid Request|Bad Request|Parse error|Method not allowed|Session not found|Invalid (Host|Origin) header|Invalid event ID)/.test(error.message);
}

type AuthInfo = NonNullable<Parameters<ReturnType<typeof createMcpHandler>["fetch"]>[1]>["authInfo"];

/** A Host header that is a host name (or bracketed IPv6 address) and port, nothing after it. */
const PLAIN_HOST = /^[A-Za-z0-9._:[\]-]{1,300}$/;

/**
 * An absolute-form request target (`POST http://host:port/mcp?groups=query`, RFC 9112 3.2.2,
 * as proxies send) as the origin-form path and query every later step reads; undefined when it
 * is not http(s) or names another host than the Host header (the name the route checked).
 */
function originForm(target: string, host: string): string | undefined {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  const withPort = (h: string) => (/:\d+$/.test(h) ? h : `${h}:${url.protocol === "https:" ? 443 : 80}`);
  if (url.username || url.password || withPort(url.host) !== withPort(host.toLowerCase())) return undefined;
  return url.pathname + url.search;
}

/**
 * The web Request the SDK's transport reads, for a request whose body is already parsed: what
 * toWebRequest (@modelcontextprotocol/node) makes, without turning the parsed body back into
 * text (the transport and the era check take the parsed body and never read this one's).
 */
function webRequest(req: Request, signal: AbortSignal): globalThis.Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.startsWith(":") || name === "content-length" || name === "transfer-encoding" || name === "content-encoding") continue;
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else headers.set(name, value);
  }
  // The route let through only a Host that is a name and port (PLAIN_HOST), so it cannot add a
  // path or query to what serverFor reads.
  return new globalThis.Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers, signal });
}

/** Writes a web Response to Node's `res`: a body known whole in one write, a stream as it comes (with backpressure). */
async function writeResponse(res: Response, response: globalThis.Response, aborted: AbortSignal): Promise<void> {
  const headers: Record<string, string> = {};
  // Connection is Node's to set (hop by hop): the SDK's event streams say keep-alive, which kept a
  // socket open after the answer to a client that had asked for Connection: close.
  for (const [name, value] of response.headers) if (name !== "connection" && name !== "keep-alive" && name !== "transfer-encoding") headers[name] = value;
  if (response.body === null) return void res.writeHead(response.status, headers).end();
  const type = headers["content-type"] ?? "";
  if (!type.startsWith("text/event-stream")) {
    // Bytes as the SDK made them: no decoding to a string and encoding back (a 1,000-row answer is ~300 KB).
    const body = Buffer.from(await response.arrayBuffer());
    headers["content-length"] = String(body.length);
    return void res.writeHead(response.status, headers).end(body);
  }
  res.writeHead(response.status, headers);
  const closed = new Promise<void>((resolve) => aborted.addEventListener("abort", () => resolve(), { once: true }));
  try {
    for await (const chunk of response.body) {
      if (aborted.aborted) break;
      if (!res.write(chunk)) await Promise.race([new Promise((resolve) => res.once("drain", resolve)), closed]);
    }
  } catch {
    // the stream failed or the client went away: end what was sent
  }
  res.end();
}

/**
 * Mounts MCP at /mcp, stateless: every request is answered by a server for its tool groups
 * (MCP SDK v2's createMcpHandler; built ones are reused, see ServerPool), 2026-07-28 requests on the
 * per-request path, 2025-era ones (initialize, then calls without a session) on its stateless
 * fallback. Nothing a client needs lives in this process between requests, so any Sextant
 * process behind a load balancer answers any request. Bearer auth and Host/Origin checks (DNS
 * rebinding) come first; answers that carry progress are event streams.
 */
export function installMcp(
  app: Express,
  deps: Omit<ToolDeps, "principalOf"> & {
    authenticate: Authenticate;
    config: Config;
    resource?: { url: string; metadataUrl: string };
    /** A request the SDK refused with a 4xx (the client's mistake: never logged as a failure). */
    logRefused?: (error: Error) => void;
  },
): { close(): Promise<void> } {
  const toolDeps: ToolDeps = { ...deps, apps: createMcpApps(), principalOf: (extra) => principalFromAuth(extra.authInfo) };
  const appDeps: ToolDeps = { ...toolDeps, apps: createMcpApps({ optedIn: true }) };
  const servers = new ServerPool((groups) => createMcpServer(toolDeps, groups));
  // Servers for requests that opted in to MCP Apps (`Sextant-Apps: 1` or ?apps=1: a 2025-era
  // client's declaration in initialize reaches no later request here), pooled apart.
  const appServers = new ServerPool((groups) => createMcpServer(appDeps, groups));
  // Plain 2025-era tool calls, answered without the SDK (directCall.ts); SEXTANT_MCP_DIRECT_CALLS=0 turns it off.
  const direct = deps.config.mcpDirectCalls ? directCalls((apps) => (apps ? appDeps : toolDeps)) : undefined;
  const serverFor = (era: string, requestInfo: globalThis.Request | undefined, authInfo: AuthInfo) => {
    const url = requestInfo?.url.includes("?") ? new URL(requestInfo.url) : undefined;
    const requested = parseToolGroups(requestInfo?.headers.get(GROUPS_HEADER) ?? url?.searchParams.get("groups") ?? undefined);
    const pool = appsOptIn(requestInfo?.headers.get(APPS_HEADER), url?.searchParams.get("apps") ?? undefined) ? appServers : servers;
    return pool.take(era, boundToolGroups(requested, principalFromAuth(authInfo).toolGroups));
  };
  const onerror = (e: unknown) => (clientRefusal(e) ? deps.logRefused?.(e as Error) : deps.logError("mcp", e));
  const handler = createMcpHandler(
    ({ requestInfo, authInfo, era }) => serverFor(era, requestInfo, authInfo),
    { legacy: "stateless", responseMode: "auto", onerror },
  );
  // A body of another type goes to the SDK's own reader: held to the same limit (its default is
  // 4 MB), past which it answers 413 at once and closes the connection.
  const node = toNodeHandler(handler, { onerror, maxRequestBodySize: limitBytes(deps.config.bodyLimit) });

  /**
   * A 2025-era request that asked for no progress, answered as one JSON body: the SDK's
   * stateless fallback answers every 2025-era request as an event stream (a stream, a
   * keep-alive timer and several writes per call, the largest cost of a call after the SQL).
   * Same server, transport and checks as that fallback (one server and exchange per request),
   * only `enableJsonResponse`; requests that asked for progress, batches and 2026-07-28
   * requests go to the SDK's handler as before.
   */
  const legacyJson = async (request: globalThis.Request, authInfo: AuthInfo, body: unknown): Promise<globalThis.Response> => {
    const product = serverFor("legacy", request, authInfo);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    let ended = false;
    // Once: after the answer the server may already serve another request (ServerPool).
    const teardown = () => {
      if (ended) return;
      ended = true;
      request.signal.removeEventListener("abort", teardown);
      transport.close().catch(() => {});
      product.close().catch(() => {});
    };
    try {
      await product.connect(transport);
      request.signal.addEventListener("abort", teardown, { once: true });
      return await transport.handleRequest(request, { ...(authInfo ? { authInfo } : {}), parsedBody: body });
    } finally {
      teardown();
    }
  };

  const serve = async (req: Request, res: Response): Promise<void> => {
    const body: unknown = req.body;
    // Without a parsed body (GET, DELETE, a POST the body parser left alone) the SDK's Node
    // adapter reads the request. A parsed body is never handed to it: it turns the body back into
    // text with JSON.stringify, which overflows the stack on a body nested a few thousand levels
    // deep (a 500 'internal error' once, for a batch or a call that asked for progress).
    if (req.method !== "POST" || body === undefined) return node(req as never, res, body);
    const single = isJsonContentType(req.headers["content-type"] ?? null) && singleRequestWithoutProgress(body);
    const abort = new AbortController();
    let finished = false;
    res.on("close", () => {
      if (!finished) abort.abort();
    });
    const authInfo = (req as { auth?: AuthInfo }).auth;
    let response: globalThis.Response;
    try {
      if (single && direct && (await direct.answer(req, res, body, authInfo))) {
        finished = true;
        return;
      }
      const request = webRequest(req, abort.signal);
      response = single && (await isLegacyRequest(request, body))
        ? await legacyJson(request, authInfo, body)
        : await handler.fetch(request, { ...(authInfo ? { authInfo } : {}), parsedBody: body });
    } catch (error) {
      deps.logError("mcp", error);
      const id = single ? (body as { id: string | number }).id : null;
      response = globalThis.Response.json({ jsonrpc: "2.0", error: { code: -32603, message: "Internal server error" }, id }, { status: 500 });
    }
    await writeResponse(res, response, abort.signal);
    finished = true;
  };

  const originCheck: express.RequestHandler = (req, res, next) => {
    const origin = req.headers.origin;
    if (origin && !originAllowed(origin, deps.config)) {
      return jsonRpcError(res, 403, `origin ${origin} is not allowed (set SEXTANT_CORS_ORIGINS)`);
    }
    next();
  };
  // Bad tool groups are the caller's mistake: a clear 400 (403 for groups the token is not for)
  // before any server is built.
  const groupsCheck: express.RequestHandler = (req, res, next) => {
    try {
      const requested = parseToolGroups(req.header(GROUPS_HEADER) ?? req.query.groups);
      boundToolGroups(requested, principalFromAuth((req as { auth?: { extra?: Record<string, unknown> } }).auth).toolGroups);
      next();
    } catch (error) {
      const pub = toPublicError(error, deps.logError);
      jsonRpcError(res, pub.status, `${pub.code}: ${pub.message}`, { code: pub.code, ...(pub.hint ? { hint: pub.hint } : {}) });
    }
  };

  app.all(
    "/mcp",
    // The SDK's check reads the host name only; a Host with a path or query after the port
    // (`127.0.0.1:3000?groups=x`) would reach the request URL the SDK builds from it.
    // A target in absolute form becomes its path and query here, for every path after: the SDK's
    // request conversions append the target to the Host (a 500 once), the direct path read it as it was.
    (req: Request, res: Response, next) => {
      const host = req.headers.host ?? "";
      if (!PLAIN_HOST.test(host)) return jsonRpcError(res, 400, "SX400: the Host header must be a host name and port", { code: "SX400" });
      if (req.url.startsWith("/")) return next();
      const target = originForm(req.url, host);
      if (target === undefined) return jsonRpcError(res, 400, "SX400: an absolute request target must be an http(s) URL of the Host header's host", { code: "SX400" });
      req.url = target;
      next();
    },
    hostCheck(deps.config.allowedHosts.map((h) => h.replace(/:\d+$/, ""))),
    originCheck,
    authFor(deps),
    groupsCheck,
    jsonBody(deps.config.bodyLimit),
    (req: Request, res: Response, next) => {
      serve(req, res).catch(next);
    },
  );

  return {
    async close() {
      await handler.close();
      servers.clear();
      appServers.clear();
    },
  };
}
