import { z } from "zod";
import { formatModelDetails } from "../formatDbt.ts";
import { rowOutput, rowsOutput } from "../outputSchemas.ts";
import { defineTool, type ToolSpec } from "../toolSpec.ts";

/** dbt area: sql/dbt_load.sql, sql/dbt_search.sql, sql/dbt_details.sql. */
export const dbtTools: ToolSpec[] = [
  defineTool({
    name: "list_dbt_models",
    title: "List dbt models",
    description: "dbt models (or another resource_type), by project, schema, materialization or tag.",
    group: "dbt",
    input: {
      project: z.string().optional(),
      schema: z.string().optional(),
      materialization: z.string().optional(),
      tag: z.string().optional(),
      resource_type: z.string().optional().describe("model (default), source, seed, snapshot, exposure, metric, test"),
      max_results: z.int32().min(0).optional().describe("1-1000, default 100"),
      page_offset: z.int32().min(0).optional(),
    },
    fn: "list_dbt_models",
    params: {
      project: "project", schema: "schema_name", materialization: "materialization", tag: "tag",
      resource_type: "resource_type", max_results: "max_results", page_offset: "page_offset",
    },
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "search_dbt_models",
    title: "Search dbt models",
    description: "Plain-English search over dbt models: names, docs, columns, tags, SQL.",
    group: "dbt",
    input: { query: z.string(), max_results: z.int32().optional().describe("default 10") },
    fn: "search_dbt_models",
    params: { query: "query", max_results: "max_results" },
    embed: ({ query }) => query,
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "get_model_details",
    title: "dbt model details",
    description: "A dbt model (name or unique_id): docs, columns, tests, SQL, lineage (default depth 2), exposures, last run, Mermaid.",
    group: "dbt",
    input: { model: z.string(), lineage_depth: z.int32().min(0).optional() },
    fn: "get_model_details",
    params: { model: "model", lineage_depth: "lineage_depth" },
    output: rowOutput,
    result: "one",
    shape: formatModelDetails,
  }),
  defineTool({
    name: "get_project_summary",
    title: "dbt project summary",
    description: "Your dbt projects: counts, doc coverage, load freshness.",
    group: "dbt",
    input: {},
    fn: "get_project_summary",
    params: {},
    output: rowsOutput,
    result: "rows",
  }),
];
