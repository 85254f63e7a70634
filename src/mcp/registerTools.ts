import { randomUUID } from "node:crypto";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type pg from "pg";
import type { AuditLog } from "../audit/auditLog.ts";
import { OperationGate } from "../audit/operation.ts";
import type { RateLimiter } from "../audit/rateLimiter.ts";
import type { Principal } from "../auth/principal.ts";
import type { Embedder } from "../dbt/embeddings.ts";
import { SextantError, toPublicError } from "../db/errors.ts";
import { queryAsRole } from "../db/queryAsRole.ts";
import { formatRows } from "./formatRows.ts";
import { fenceUntrusted, formatToolError } from "./formatUntrusted.ts";
import type { ToolSpec } from "./toolSpec.ts";

export interface ToolDeps {
  pool: pg.Pool;
  /** The principal of the current call (from the HTTP request's auth, or fixed for stdio). */
  principalOf: (extra: { authInfo?: { extra?: Record<string, unknown> } }) => Principal;
  logError: (requestId: string, error: unknown) => void;
  audit?: AuditLog;
  rateLimiter?: RateLimiter;
  /** The audit and rate-limit step shared with GraphQL; built from `audit` and `rateLimiter` when absent. */
  gate?: OperationGate;
  /** The embeddings endpoint, when configured: search questions are embedded and blended in SQL. */
  embedder?: Embedder;
}

/**
 * The question's vector as a PostgreSQL array literal (tool arguments are inlined as literals),
 * or null: search then ranks by words alone (an endpoint failure is logged, not fatal).
 */
async function questionVector(deps: ToolDeps, requestId: string, text: string): Promise<string | null> {
  // Over 1,000 characters the SQL refuses the question anyway (sextant_exec.search_question): not worth a request.
  if (!deps.embedder || text.trim() === "" || text.length > 1000) return null;
  try {
    const vector = (await deps.embedder.embed([text], { timeoutMs: 5000 }))[0];
    return vector ? `{${vector.join(",")}}` : null;
  } catch (error) {
    deps.logError(requestId, error);
    return null;
  }
}

/** Whether any string in a tool's arguments holds a NUL character. */
function hasNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(hasNul);
  if (value && typeof value === "object") return Object.entries(value).some(([k, v]) => k.includes("\u0000") || hasNul(v));
  return false;
}

function shapeRows(spec: ToolSpec, rows: Record<string, unknown>[]): CallToolResult {
  if (spec.result === "one") {
    const row = rows[0] ?? {};
    // Rows carry others' text (names, comments, notes, pipelines): fenced unless a shape fences its own.
    const shaped = spec.shape ? spec.shape(row) : { text: fenceUntrusted(JSON.stringify(row), "JSON"), structured: row };
    return { content: [{ type: "text", text: shaped.text }], structuredContent: shaped.structured };
  }
  return {
    content: [{ type: "text", text: `${rows.length} rows\n${fenceUntrusted(formatRows(rows), "rows")}` }],
    structuredContent: { rows, row_count: rows.length },
  };
}

/**
 * One tool call: guard the input, count it against the rate limits, run the SQL as the
 * caller's role in a transaction that is rolled back, shape the output, and audit the outcome
 * (refused and failed calls too). Errors come back as `isError` results, never as stacks.
 */
/** What the MCP SDK passes a tool handler that callTool uses (progress token, notifications, cancel). */
export interface CallExtra {
  signal?: AbortSignal;
  _meta?: { progressToken?: string | number };
  sendNotification?: (n: { method: "notifications/progress"; params: { progressToken: string | number; progress: number; message?: string } }) => Promise<void>;
}

export async function callTool(spec: ToolSpec, deps: ToolDeps, principal: Principal, input: unknown, extra: CallExtra = {}): Promise<CallToolResult> {
  const started = performance.now();
  const requestId = randomUUID();
  const gate = deps.gate ?? new OperationGate(deps.audit, deps.rateLimiter);
  let rowCount: number | undefined;
  let failure: ReturnType<typeof toPublicError> | undefined;
  try {
    // PostgreSQL text cannot hold NUL, and the wire protocol ends strings at it: refuse it here,
    // for every tool, instead of letting it break the call's connection (08P01).
    if (hasNul(input)) {
      throw new SextantError("SX400", "arguments must not contain NUL characters (U+0000)", "Remove the NUL characters from the text.");
    }
    spec.guard?.(input as never);
    await gate.admit(principal);
    const args = spec.args(input as never);
    if (spec.embed) {
      const vector = await questionVector(deps, requestId, spec.embed(input as never));
      args.push(vector, vector && deps.embedder!.model);
    }
    let rows = await queryAsRole(deps.pool, principal, spec.sql, args, { write: spec.writes ?? false });
    if (spec.follow) {
      const token = extra._meta?.progressToken;
      rows = [await spec.follow({
        input: input as never,
        row: rows[0] ?? {},
        query: (sql, args) => queryAsRole(deps.pool, principal, sql, args),
        progress: async (progress, message) => {
          if (token !== undefined && extra.sendNotification) {
            await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress, message } });
          }
        },
        signal: extra.signal,
      })];
    }
    const result = shapeRows(spec, rows);
    const structured = result.structuredContent as { row_count?: number } | undefined;
    rowCount = structured?.row_count ?? rows.length;
    return result;
  } catch (error) {
    failure = toPublicError(error, (id, e) => deps.logError(id, e));
    return { isError: true, content: [{ type: "text", text: formatToolError(failure) }] };
  } finally {
    gate.record(principal, { tool: spec.name, sql: spec.auditSql?.(input as never), requestId }, { started, rowCount, failure });
  }
}

/** Registers every spec on `server`; the one loop all tools go through. */
export function registerTools(server: McpServer, specs: ToolSpec[], deps: ToolDeps): void {
  for (const spec of specs) {
    server.registerTool(
      spec.name,
      {

        description: spec.description,
        inputSchema: spec.input,
        annotations: { readOnlyHint: !spec.writes },
      },
      async (input: unknown, extra: Parameters<ToolDeps["principalOf"]>[0] & CallExtra) =>
        callTool(spec, deps, deps.principalOf(extra), input, extra),
    );
  }
}
