import { hostHeaderValidation } from "@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js";
import { toNodeHandler } from "@modelcontextprotocol/node";
import { createMcpHandler } from "@modelcontextprotocol/server";
import express, { type Express, type Request, type Response } from "express";
import type { Authenticate } from "../auth/authenticate.ts";
import { bearerAuth, principalFromAuth } from "../auth/bearer.ts";
import type { Config } from "../config.ts";
import { toPublicError } from "../db/errors.ts";
import { baseFor } from "../oauth/hostAliases.ts";
import { createMcpApps } from "./apps/index.ts";
import { originAllowed } from "./origins.ts";
import type { ToolDeps } from "./registerTools.ts";
import { createMcpServer } from "./server.ts";
import { boundToolGroups, GROUPS_HEADER, parseToolGroups } from "./toolGroups.ts";

/**
 * Bearer auth whose 401 points at the protected-resource metadata under the name the client
 * used (a loopback alias of a loopback public URL); tokens are checked against the one resource.
 */
function authFor(deps: { authenticate: Authenticate; config: Config; resource?: { url: string; metadataUrl: string } }): express.RequestHandler {
  const byBase = new Map<string, express.RequestHandler>();
  const publicOrigin = new URL(deps.config.publicUrl).origin;
  return (req, res, next) => {
    const base = baseFor(req.headers.host, deps.config.publicUrl);
    let handler = byBase.get(base);
    if (!handler) {
      const resource = deps.resource && { url: deps.resource.url, metadataUrl: deps.resource.metadataUrl.replace(publicOrigin, new URL(base).origin) };
      byBase.set(base, (handler = bearerAuth(deps.authenticate, resource)));
    }
    handler(req, res, next);
  };
}

function jsonRpcError(res: Response, status: number, message: string, data?: Record<string, string>): void {
  res.status(status).json({ jsonrpc: "2.0", error: { code: -32000, message, ...(data ? { data } : {}) }, id: null });
}

/**
 * Mounts MCP at /mcp, stateless: every request is answered by a fresh server built for its
 * principal and tool groups (MCP SDK v2's createMcpHandler), 2026-07-28 requests on the
 * per-request path, 2025-era ones (initialize, then calls without a session) on its stateless
 * fallback. Nothing a client needs lives in this process between requests, so any Sextant
 * process behind a load balancer answers any request. Bearer auth and Host/Origin checks (DNS
 * rebinding) come first; answers that carry progress are event streams.
 */
export function installMcp(
  app: Express,
  deps: Omit<ToolDeps, "principalOf"> & { authenticate: Authenticate; config: Config; resource?: { url: string; metadataUrl: string } },
): { close(): Promise<void> } {
  const toolDeps: ToolDeps = { ...deps, apps: createMcpApps(), principalOf: (extra) => principalFromAuth(extra.authInfo) };
  const handler = createMcpHandler(
    ({ requestInfo, authInfo }) => {
      const url = requestInfo ? new URL(requestInfo.url) : undefined;
      const requested = parseToolGroups(requestInfo?.headers.get(GROUPS_HEADER) ?? url?.searchParams.get("groups") ?? undefined);
      return createMcpServer(toolDeps, boundToolGroups(requested, principalFromAuth(authInfo).toolGroups));
    },
    { legacy: "stateless", responseMode: "auto", onerror: (e) => deps.logError("mcp", e) },
  );
  const node = toNodeHandler(handler, { onerror: (e) => deps.logError("mcp", e) });

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
    hostHeaderValidation(deps.config.allowedHosts.map((h) => h.replace(/:\d+$/, ""))),
    originCheck,
    authFor(deps),
    groupsCheck,
    express.json({ limit: deps.config.bodyLimit }),
    (req: Request, res: Response, next) => {
      node(req as never, res, req.body).catch(next);
    },
  );

  return {
    async close() {
      await handler.close();
    },
  };
}
