import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type pg from "pg";
import type { Principal } from "../auth/principal.ts";
import { toPublicError } from "../db/errors.ts";
import { withRole } from "../db/withRole.ts";
import { formatRows } from "./formatRows.ts";
import type { ToolSpec } from "./toolSpec.ts";

export interface ToolDeps {
  pool: pg.Pool;
  /** The principal of the current call (from the HTTP request's auth, or fixed for stdio). */
  principalOf: (extra: { authInfo?: { extra?: Record<string, unknown> } }) => Principal;
  logError: (requestId: string, error: unknown) => void;
}

/** Runs one spec as the caller's role and shapes the result as text plus structuredContent. */
export async function callTool(spec: ToolSpec, deps: ToolDeps, principal: Principal, input: unknown): Promise<CallToolResult> {
  try {
    const rows = await withRole(
      deps.pool,
      principal,
      async (client) => (await client.query(spec.sql, spec.args(input as never))).rows,
      { write: spec.writes ?? false, commit: spec.writes ?? false },
    );
    if (spec.result === "one") {
      const row = (rows[0] ?? {}) as Record<string, unknown>;
      return { content: [{ type: "text", text: JSON.stringify(row) }], structuredContent: row };
    }
    return {
      content: [{ type: "text", text: `${rows.length} rows\n${formatRows(rows)}` }],
      structuredContent: { rows, row_count: rows.length },
    };
  } catch (error) {
    const e = toPublicError(error, deps.logError);
    const text = [`error ${e.code}: ${e.message}`, e.detail, e.hint && `hint: ${e.hint}`].filter(Boolean).join("\n");
    return { isError: true, content: [{ type: "text", text }] };
  }
}

/** Registers every spec on `server`; the one loop all tools go through. */
export function registerTools(server: McpServer, specs: ToolSpec[], deps: ToolDeps): void {
  for (const spec of specs) {
    server.registerTool(
      spec.name,
      {
        title: spec.title,
        description: spec.description,
        inputSchema: spec.input,
        annotations: { readOnlyHint: !spec.writes, openWorldHint: false },
      },
      async (input: unknown, extra: Parameters<ToolDeps["principalOf"]>[0]) =>
        callTool(spec, deps, deps.principalOf(extra), input),
    );
  }
}
