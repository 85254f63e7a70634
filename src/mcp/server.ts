import { McpServer } from "@modelcontextprotocol/server";
import { registerPrompts } from "./prompts.ts";
import { MAX_TOOL_INPUT_ELEMENTS, registerTools, type ToolDeps } from "./registerTools.ts";
import { registerResources } from "./resources.ts";
import { TOOL_GROUPS, type ToolGroup } from "./toolSpec.ts";
import { catalogTools } from "./tools/catalog.ts";
import { dbtTools } from "./tools/dbt.ts";
import { knowledgeTools } from "./tools/knowledge.ts";
import { materializeTools } from "./tools/materialize.ts";
import { queryTools } from "./tools/query.ts";

/** Every tool Sextant offers, area by area. */
export const allTools = [...catalogTools, ...queryTools, ...dbtTools, ...knowledgeTools, ...materializeTools];

/**
 * How long a client may keep list results (MCP 2026-07-28 cache hints): the lists change only
 * with a new Sextant version, and differ per caller (tool groups), hence private.
 */
const LIST_TTL_MS = 300_000;

/**
 * An MCP server with the tools of `groups` (default: all) registered, and the resources and
 * prompts that go with them; transports (HTTP per request, stdio) are attached by the caller.
 */
export function createMcpServer(deps: ToolDeps, groups: readonly ToolGroup[] = TOOL_GROUPS): McpServer {
  const server = new McpServer(
    { name: "sextant", version: "0.1.0", title: "Sextant" },
    {
      maxToolInputElements: MAX_TOOL_INPUT_ELEMENTS,
      instructions:
        "Sextant: read-only, per-tenant access to a PostgreSQL analytics database. Start with whoami and list_schemas.",
      cacheHints: {
        "tools/list": { ttlMs: LIST_TTL_MS, cacheScope: "private" },
        "prompts/list": { ttlMs: LIST_TTL_MS, cacheScope: "private" },
        "resources/templates/list": { ttlMs: LIST_TTL_MS, cacheScope: "private" },
        "resources/list": { ttlMs: LIST_TTL_MS, cacheScope: "private" },
        "server/discover": { ttlMs: LIST_TTL_MS, cacheScope: "private" },
      },
    },
  );
  const tools = allTools.filter((t) => groups.includes(t.group));
  registerTools(server, tools, deps);
  registerResources(server, deps, groups);
  registerPrompts(server, groups);
  deps.apps?.register?.(server);
  return server;
}
