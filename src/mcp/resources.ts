import { ResourceTemplate, type McpServer, type ReadResourceResult } from "@modelcontextprotocol/server";
import { callTool, type ToolDeps } from "./registerTools.ts";
import type { ToolGroup } from "./toolSpec.ts";
import { catalogTools } from "./tools/catalog.ts";
import { dbtTools } from "./tools/dbt.ts";

const describeTable = catalogTools.find((t) => t.name === "describe_table")!;
const modelDetails = dbtTools.find((t) => t.name === "get_model_details")!;

/** Template variables arrive as string or string[]; one value, bounded like any tool argument. */
function one(value: string | string[] | undefined): string {
  return decodeURIComponent(String(Array.isArray(value) ? value[0] : (value ?? ""))).slice(0, 1000);
}

/**
 * Table and dbt-model docs as resource templates, for clients that attach context by URI.
 * Each read is the tool call (describe_table, get_model_details) through callTool: the same SQL,
 * role, rate limit and audit; its text is the tool's fenced text.
 */
export function registerResources(server: McpServer, deps: ToolDeps, groups: readonly ToolGroup[]): void {
  const read = async (uri: URL, spec: typeof describeTable, input: Record<string, unknown>, authInfo: unknown): Promise<ReadResourceResult> => {
    const result = await callTool(spec, deps, deps.principalOf({ authInfo: authInfo as never }), input);
    const text = (result.content as { text: string }[])[0]?.text ?? "";
    if (result.isError) throw new Error(text);
    return { contents: [{ uri: uri.href, mimeType: "text/plain", text }] };
  };
  if (groups.includes("catalog")) {
    server.registerResource(
      "table",
      new ResourceTemplate("sextant://table/{schema}/{table}", { list: undefined }),
      { title: "Table description", description: "Columns, keys, indexes, comments and team notes of a table or view.", mimeType: "text/plain" },
      (uri, vars, ctx) => read(uri, describeTable, { schema: one(vars.schema), table: one(vars.table) }, ctx.http?.authInfo),
    );
  }
  if (groups.includes("dbt")) {
    server.registerResource(
      "dbt-model",
      new ResourceTemplate("sextant://dbt-model/{model}", { list: undefined }),
      { title: "dbt model", description: "A dbt model's docs, columns, tests, SQL and lineage.", mimeType: "text/plain" },
      (uri, vars, ctx) => read(uri, modelDetails, { model: one(vars.model) }, ctx.http?.authInfo),
    );
  }
}
