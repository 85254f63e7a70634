import { randomUUID } from "node:crypto";
import { hostHeaderValidation } from "@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import express, { type Express, type Request, type Response } from "express";
import type { Authenticate } from "../auth/authenticate.ts";
import { bearerAuth, principalFromAuth } from "../auth/bearer.ts";
import type { Principal } from "../auth/principal.ts";
import type { Config } from "../config.ts";
import { createMcpServer } from "./server.ts";
import type { ToolDeps } from "./registerTools.ts";

interface Session {
  transport: StreamableHTTPServerTransport;
  owner: string;
  lastSeen: number;
}

const IDLE_MS = 30 * 60_000;
const MAX_SESSIONS = 1000;

const ownerKey = (p: Principal) => `${p.dbRole}\u0000${p.subject}`;

function jsonRpcError(res: Response, status: number, message: string): void {
  res.status(status).json({ jsonrpc: "2.0", error: { code: -32000, message }, id: null });
}

/**
 * Mounts MCP over Streamable HTTP at /mcp: Bearer auth, Host/Origin checks against DNS
 * rebinding, event-stream answers (progress notifications travel on them), and one long-lived server per session (bound to the principal
 * that opened it, so a session id alone is worth nothing to anyone else).
 */
export function installMcp(
  app: Express,
  deps: Omit<ToolDeps, "principalOf"> & { authenticate: Authenticate; config: Config; resource?: { url: string; metadataUrl: string } },
): { close(): Promise<void> } {
  const sessions = new Map<string, Session>();
  const toolDeps: ToolDeps = { ...deps, principalOf: (extra) => principalFromAuth(extra.authInfo) };

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
      if (sessions.size >= MAX_SESSIONS) evictOldest();
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        // Each POST is answered as a short event stream (the SDK's default): a tool that waits
        // (run_materialization with wait_seconds) sends its progress notifications on it before
        // the result. JSON-only answers could not carry them.
        enableJsonResponse: false,
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, owner: ownerKey(principal), lastSeen: Date.now() });
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await createMcpServer(toolDeps).connect(transport);
      await transport.handleRequest(req, res, req.body);
      return;
    }
    session.lastSeen = Date.now();
    await session.transport.handleRequest(req, res, req.body);
  };

  function evictOldest() {
    const oldest = [...sessions.entries()].sort((a, b) => a[1].lastSeen - b[1].lastSeen)[0];
    if (oldest) void oldest[1].transport.close();
  }

  const sweep = setInterval(() => {
    const cutoff = Date.now() - IDLE_MS;
    for (const s of sessions.values()) if (s.lastSeen < cutoff) void s.transport.close();
  }, 60_000);
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
    },
  };
}
