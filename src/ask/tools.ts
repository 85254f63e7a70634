import { z } from "zod";
import type { Principal } from "../auth/principal.ts";
import { callTool, type ToolDeps } from "../mcp/registerTools.ts";
import { allTools } from "../mcp/server.ts";
import type { ToolSpec } from "../mcp/toolSpec.ts";
import type { ToolCall, ToolDefinition } from "./llm/types.ts";

/**
 * The MCP tools the answering loop may use: reading ones, plus save_learning for analysts and
 * admins (corrections become learnings). No tool that provisions, loads or cancels anything.
 */
const READING = ["list_schemas", "list_tables", "describe_table", "get_metadata", "sample_table", "query", "explain_query",
  "search_dbt_models", "list_dbt_models", "get_model_details", "get_project_summary", "get_knowledge", "search_knowledge"];

/** The most a tool result may put in the model's context (the query tool's rows are asked for in pages of 100). */
const MAX_RESULT_CHARS = 24_000;
const DEFAULT_QUERY_ROWS = 100;

export interface ToolOutcome {
  text: string;
  isError: boolean;
  /** structuredContent of a successful call (a query's columns and rows, a search's hits). */
  structured?: Record<string, unknown>;
}

export interface AskTools {
  definitions: ToolDefinition[];
  /** Runs one call as the asking person, through the MCP tool path (guard, rate limit, role, audit). */
  call(call: ToolCall): Promise<ToolOutcome>;
}

function specsFor(principal: Principal): ToolSpec[] {
  const names = new Set(principal.accessLevel === "viewer" ? READING : [...READING, "save_learning"]);
  return allTools.filter((t) => names.has(t.name));
}

/** The tools for one person's question. Their definitions come from the same zod shapes MCP clients see. */
export function askTools(deps: ToolDeps, principal: Principal): AskTools {
  const specs = new Map(specsFor(principal).map((s) => [s.name, s]));
  const definitions = [...specs.values()].map((s) => {
    const { $schema: _ignored, ...parameters } = z.toJSONSchema(z.object(s.input)) as Record<string, unknown>;
    return { name: s.name, description: s.description, parameters };
  });
  return {
    definitions,
    async call(call) {
      if (call.malformed) return { text: `error: ${call.malformed}; call the tool again with a JSON object of arguments`, isError: true };
      const spec = specs.get(call.name);
      if (!spec) {
        return { text: `error: there is no tool named ${JSON.stringify(call.name.slice(0, 60))} here; the tools are ${[...specs.keys()].join(", ")}`, isError: true };
      }
      const parsed = z.object(spec.input).safeParse(call.arguments);
      if (!parsed.success) {
        const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`).join("; ");
        return { text: `error: the arguments do not fit ${spec.name}: ${issues}`, isError: true };
      }
      const input = spec.name === "query" ? { max_rows: DEFAULT_QUERY_ROWS, ...parsed.data } : parsed.data;
      const result = await callTool(spec, deps, principal, input);
      const text = result.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
      // A result is never cut (that could cut the untrusted-data fence's closing line): an
      // oversized one is replaced by a note saying so.
      const bounded = text.length <= MAX_RESULT_CHARS ? text
        : `the result was ${text.length} characters, more than the ${MAX_RESULT_CHARS} one step may hold; ask for fewer rows or columns (max_rows), or aggregate in SQL`;
      return { text: bounded, isError: result.isError === true, structured: result.isError ? undefined : (result.structuredContent as Record<string, unknown> | undefined) };
    },
  };
}
