import { z } from "zod";
import { formatModelDetails } from "../formatDbt.ts";
import { defineTool, type ToolSpec } from "../toolSpec.ts";

/** dbt area: sql/dbt.sql. */
export const dbtTools: ToolSpec[] = [
  defineTool({
    name: "list_dbt_models",
    title: "List dbt models",
    description: "dbt models (or another resource_type) of your projects, filtered by project, schema, materialization or tag.",
    input: {
      project: z.string().optional(),
      schema: z.string().optional(),
      materialization: z.string().optional().describe("table, view, incremental, ephemeral, ..."),
      tag: z.string().optional(),
      resource_type: z.string().optional().describe("model (default), source, seed, snapshot, exposure, metric, test"),
      max_results: z.number().optional().describe("1 to 1000 (default 100)"),
      page_offset: z.number().optional(),
    },
    sql: "select * from sextant.list_dbt_models($1, $2, $3, $4, $5, $6, $7)",
    args: (i) => [i.project ?? null, i.schema ?? null, i.materialization ?? null, i.tag ?? null, i.resource_type ?? "model", i.max_results ?? 100, i.page_offset ?? 0],
    result: "rows",
  }),
  defineTool({
    name: "search_dbt_models",
    title: "Search dbt models",
    description: "Plain-English search over dbt model names, descriptions, columns, tags and SQL; ranked, with the fields that matched.",
    input: { query: z.string().describe('e.g. "readmission rate by hospital"'), max_results: z.number().optional().describe("default 10") },
    sql: "select * from sextant.search_dbt_models($1, $2, $3, $4)",
    args: ({ query, max_results }) => [query, max_results ?? 10],
    embed: ({ query }) => query,
    result: "rows",
  }),
  defineTool({
    name: "get_model_details",
    title: "dbt model details",
    description: "A dbt model (name or unique_id): docs, columns, tests, SQL, lineage (lineage_depth, default 2), exposures, last run, Mermaid diagram.",
    input: { model: z.string(), lineage_depth: z.number().optional() },
    sql: "select * from sextant.get_model_details($1, $2)",
    args: ({ model, lineage_depth }) => [model, lineage_depth ?? 2],
    result: "one",
    shape: formatModelDetails,
  }),
  defineTool({
    name: "get_project_summary",
    title: "dbt project summary",
    description: "Your dbt projects: counts, doc coverage, load freshness.",
    input: {},
    sql: "select * from sextant.get_project_summary()",
    args: () => [],
    result: "rows",
  }),
];
