import { randomUUID } from "node:crypto";
import { hostHeaderValidation } from "@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import express, { type Express, type Request, type Response } from "express";
import type { Authenticate } from "../auth/authenticate.ts";
import { bearerAuth, principalFromAuth } from "../auth/bearer.ts";
import type { Principal } from "../auth/principal.ts";
import type { Config } from "../config.ts";
import { toPublicError } from "../db/errors.ts";
import { OperationGate } from "../audit/operation.ts";
import { createMcpServer } from "./server.ts";
import type { ToolDeps } from "./registerTools.ts";

interface Session {
  transport: StreamableHTTPServerTransport;
  owner: string;
  lastSeen: number;
  /** Used since the last sync with PostgreSQL. */
  used: boolean;
}

const IDLE_MS = 30 * 60_000;
/** This process's memory bound; quotas per principal and tenant (in PostgreSQL) come first. */
const MAX_SESSIONS_PER_PROCESS = 10_000;
/** How often a process tells PostgreSQL which sessions were used and learns which ended elsewhere. */
const SYNC_MS = 10_000;

const ownerKey = (p: Principal) => `${p.dbRole}\u0000${p.subject}`;

function jsonRpcError(res: Response, status: number, message: string, data?: Record<string, string>): void {
  res.status(status).json({ jsonrpc: "2.0", error: { code: -32000, message, ...(data ? { data } : {}) }, id: null });
}

/**
 * Mounts MCP over Streamable HTTP at /mcp: Bearer auth, Host/Origin checks against DNS
 * rebinding, event-stream answers (progress notifications travel on them), and one long-lived
 * server per session (bound to the principal that opened it, so a session id alone is worth
 * nothing to anyone else). Live sessions are rows in PostgreSQL, bounded per principal (over
 * its quota a principal's own oldest session ends) and per tenant (over it: refused, SX429);
 * opening one passes the operation gate (rate-counted, audited as `mcp:session`).
 */
export function installMcp(
  app: Express,
  deps: Omit<ToolDeps, "principalOf"> & { authenticate: Authenticate; config: Config; resource?: { url: string; metadataUrl: string } },
): { close(): Promise<void> } {
  const sessions = new Map<string, Session>();
  const toolDeps: ToolDeps = { ...deps, principalOf: (extra) => principalFromAuth(extra.authInfo) };
  const gate = deps.gate ?? new OperationGate(deps.audit, deps.rateLimiter);
  const quota = deps.config.mcpSessions;

  /** Reserves a session in PostgreSQL (or throws SX429); ends this principal's sessions it displaced. */
  async function openSession(principal: Principal): Promise<string> {
    const started = performance.now();
    const id = randomUUID();
    try {
      if (sessions.size >= MAX_SESSIONS_PER_PROCESS) {
        throw Object.assign(new Error("this server holds as many MCP sessions as it may; try again later"), { code: "SX429" });
      }
      await gate.admitSession(principal);
      const { rows } = await deps.pool.query(
        "select sextant_private.open_mcp_session($1, $2, $3, $4, $5, $6) as ended",
        [id, principal.tenant, principal.subject, quota.perPrincipal, quota.perTenant, IDLE_MS / 1000],
      );
      for (const ended of rows[0].ended as string[]) void sessions.get(ended)?.transport.close();
      gate.record(principal, { tool: "mcp:session", requestId: id }, { started });
      return id;
    } catch (error) {
      gate.record(principal, { tool: "mcp:session", requestId: id }, { started, failure: toPublicError(error) });
      throw error;
    }
  }

  const originCheck: express.RequestHandler = (req, res, next) => {
    const origin = req.headers.origin;
    if (origin && !deps.config.allowedOrigins.includes(origin)) {
      return jsonRpcError(res, 403, `origin ${origin} is not allowed (set SEXTANT_CORS_ORIGINS)`);
    }
    next();
  };

  const handle = async (req: Request, res: Response) => {
    const principal = principalFromAuth(req.auth);
    const sessionId = req.header("mcp-session-id");
    let session = sessionId ? sessions.get(sessionId) : undefined;
    if (sessionId && (!session || session.owner !== ownerKey(principal))) {
      return jsonRpcError(res, 404, "session not found; initialize a new one");
    }
    if (!session) {
      if (req.method !== "POST" || !isInitializeRequest(req.body)) {
        return jsonRpcError(res, 400, "no mcp-session-id header: send an initialize request first");
      }
      let id: string;
      try {
        id = await openSession(principal);
      } catch (error) {
        const pub = toPublicError(error, deps.logError);
        const retry = /Retry after (\d+) seconds/.exec(pub.detail ?? "");
        if (retry) res.setHeader("Retry-After", retry[1]!);
        return jsonRpcError(res, pub.status, `${pub.code}: ${pub.message}`, {
          code: pub.code, ...(pub.detail ? { detail: pub.detail } : {}), ...(pub.hint ? { hint: pub.hint } : {}),
        });
      }
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => id,
        // Each POST is answered as a short event stream (the SDK's default): a tool that waits
        // (run_materialization with wait_seconds) sends its progress notifications on it before
        // the result. JSON-only answers could not carry them.
        enableJsonResponse: false,
        onsessioninitialized: (sid) => {
          sessions.set(sid, { transport, owner: ownerKey(principal), lastSeen: Date.now(), used: false });
        },
      });
      transport.onclose = () => {
        sessions.delete(id);
        forget(id);
      };
      try {
        await createMcpServer(toolDeps).connect(transport);
        await transport.handleRequest(req, res, req.body);
      } finally {
        if (!sessions.has(id)) forget(id); // the initialize failed: no session came of it
      }
      return;
    }
    session.lastSeen = Date.now();
    session.used = true;
    await session.transport.handleRequest(req, res, req.body);
  };

  const forgetting = new Set<Promise<unknown>>();
  function forget(id: string) {
    const p = deps.pool.query("select sextant_private.close_mcp_session($1)", [id]).catch((e) => deps.logError(id, e));
    forgetting.add(p);
    void p.finally(() => forgetting.delete(p));
  }

  // Idle sessions end here; sessions ended by another process (a principal over its quota
  // there) end here too; and PostgreSQL learns which sessions were used.
  let syncing = false;
  const sweep = setInterval(() => {
    if (syncing) return;
    const cutoff = Date.now() - IDLE_MS;
    for (const s of sessions.values()) if (s.lastSeen < cutoff) void s.transport.close();
    if (sessions.size === 0) return;
    const used = [...sessions].filter(([, s]) => s.used).map(([id]) => id);
    const held = [...sessions.keys()];
    for (const id of used) sessions.get(id)!.used = false;
    syncing = true;
    deps.pool
      .query("select sextant_private.touch_mcp_sessions($1::uuid[], $2::uuid[]) as live", [used, held])
      .then(({ rows }) => {
        const live = new Set(rows[0].live as string[]);
        for (const id of held) if (!live.has(id)) void sessions.get(id)?.transport.close();
      })
      .catch((e) => deps.logError("mcp-session-sync", e))
      .finally(() => (syncing = false));
  }, SYNC_MS);
  sweep.unref();

  app.all(
    "/mcp",
    hostHeaderValidation(deps.config.allowedHosts.map((h) => h.replace(/:\d+$/, ""))),
    originCheck,
    bearerAuth(deps.authenticate, deps.resource),
    express.json({ limit: deps.config.bodyLimit }),
    (req, res, next) => {
      handle(req, res).catch(next);
    },
  );

  return {
    async close() {
      clearInterval(sweep);
      await Promise.all([...sessions.values()].map((s) => s.transport.close()));
      await Promise.all(forgetting);
    },
  };
}
