import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { registerTools, type ToolDeps } from "./registerTools.ts";
import { catalogTools } from "./tools/catalog.ts";
import { dbtTools } from "./tools/dbt.ts";
import { knowledgeTools } from "./tools/knowledge.ts";
import { materializeTools } from "./tools/materialize.ts";
import { queryTools } from "./tools/query.ts";

/** Every tool Sextant offers, area by area. */
export const allTools = [...catalogTools, ...queryTools, ...dbtTools, ...knowledgeTools, ...materializeTools];

/** An MCP server with all tools registered; transports (HTTP, stdio) are attached by the caller. */
export function createMcpServer(deps: ToolDeps): McpServer {
  const server = new McpServer(
    { name: "sextant", version: "0.1.0" },
    {
      instructions:
        "Sextant: read-only, per-tenant access to a PostgreSQL analytics database. Start with whoami and list_schemas.",
    },
  );
  registerTools(server, allTools, deps);
  return server;
}
