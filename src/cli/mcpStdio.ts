import os from "node:os";
import type pg from "pg";
import { serveStdio, StdioServerTransport } from "@modelcontextprotocol/server/stdio";
import { buildPrincipal, type Principal } from "../auth/principal.ts";
import { authenticatorUrl } from "../db/migrate.ts";
import { AuditLog } from "../audit/auditLog.ts";
import { RateLimiter } from "../audit/rateLimiter.ts";
import { createTenantLimits, type TenantLimitsCache } from "../auth/tenantLimits.ts";
import { createPool } from "../db/pool.ts";
import { createMcpApps } from "../mcp/apps/index.ts";
import { createMcpServer } from "../mcp/server.ts";
import { stdioDirect } from "../mcp/stdioDirect.ts";
import { createEmbedder } from "../dbt/embeddings.ts";
import { openContext } from "./context.ts";

/**
 * `sextant mcp --tenant <slug>`: MCP over stdio as one tenant. Whoever can run this has the
 * database credentials already, so the principal is the local OS user; every call still runs
 * as the tenant's role through the same path as HTTP. The SDK's serveStdio picks the era from
 * the opening message: a 2026-07-28 client (server/discover, no initialize) and a 2025 one
 * (initialize) are each served by one server from the same factory.
 */
export async function runStdio(tenant: string, level: string): Promise<void> {
  const ctx = await openContext();
  let principal: Principal;
  let pool: pg.Pool | undefined;
  let limits: TenantLimitsCache;
  try {
    pool = createPool(await authenticatorUrl(ctx.db.adminUrl), 5, (e) => ctx.log.warn({ err: e }, "idle connection error"));
    // The same limits reader the HTTP server uses (statement timeout, rate limits).
    limits = createTenantLimits(pool);
    principal = await buildPrincipal(ctx.admin, { tenant, accessLevel: level, subject: `local:${os.userInfo().username}`, authMethod: "local" }, limits);
  } catch (error) {
    await pool?.end().catch(() => {});
    await ctx.close();
    throw error;
  }
  const audit = new AuditLog(pool, (e) => ctx.log.warn({ err: e }, "audit flush failed; will retry"));
  const rateLimiter = new RateLimiter(pool);
  const toolDeps = {
    pool,
    audit,
    rateLimiter,
    embedder: createEmbedder(ctx.config.embeddings),
    principalOf: () => principal,
    apps: createMcpApps(), // MCP Apps for hosts that declare them (src/mcp/apps/, CONSOLE's)
    logError: (id: string, err: unknown) => ctx.log.error({ err, requestId: id }, "tool failed"),
  };
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await served.close().catch(() => {});
    await direct?.close();
    await audit.close();
    await rateLimiter.close();
    await pool.end().catch(() => {});
    await ctx.close();
    process.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal); // see serve.ts
  process.stdin.on("end", () => void shutdown());
  process.stdin.on("close", () => void shutdown());
  process.on("SIGINT", () => void shutdown());
  process.on("SIGTERM", () => void shutdown());
  // Plain 2025-era tools/call lines are answered without the SDK (src/mcp/stdioDirect.ts; SEXTANT_MCP_DIRECT_CALLS=0: off).
  const direct = ctx.config.mcpDirectCalls
    ? stdioDirect(toolDeps, process.stdin, process.stdout, (tool) => ctx.log.debug({ tool }, "mcp stdio direct call"))
    : undefined;
  const served = serveStdio(() => createMcpServer(toolDeps), {
    onerror: (e) => ctx.log.warn({ error: e.message }, "mcp stdio error"), // the message only: no stack on stderr
    ...(direct && { transport: new StdioServerTransport(direct.sdkInput, process.stdout) }),
  });
}
