import { z } from "zod";
import { formatDataDictionary, formatTableDescription } from "../formatCatalog.ts";
import { formatQueryResult } from "../formatResult.ts";
import { defineTool, type ToolSpec } from "../toolSpec.ts";

const schema = z.string().optional().describe("Schema name, e.g. shop (default: all your schemas)");
const table = z.string().describe('Table or view name, or "schema.table"');

/** Catalog area: sql/catalog.sql (sample_table: sql/query.sql). */
export const catalogTools: ToolSpec[] = [
  defineTool({
    name: "whoami",
    title: "Who am I",
    description: "Your tenant, access level, role and principal.",
    input: {},
    sql: "select * from sextant.whoami()",
    args: () => [],
    result: "one",
  }),
  defineTool({
    name: "list_databases",
    title: "List databases",
    description: "The data sources your tenant can read.",
    input: {},
    sql: "select * from sextant.list_databases()",
    args: () => [],
    result: "rows",
  }),
  defineTool({
    name: "list_schemas",
    title: "List schemas",
    description: "Schemas your tenant can read, with the number of readable tables and views in each.",
    input: {},
    sql: "select * from sextant.list_schemas()",
    args: () => [],
    result: "rows",
  }),
  defineTool({
    name: "list_tables",
    title: "List tables",
    description: "Tables and views you can read: comments, row estimates, size, freshness. Paged (max_results, page_offset).",
    input: {
      schema,
      max_results: z.number().optional().describe("Page size, 1 to 1000 (default 100)"),
      page_offset: z.number().optional().describe("Rows to skip (default 0)"),
    },
    sql: "select * from sextant.list_tables($1, $2, $3)",
    args: ({ schema, max_results, page_offset }) => [schema ?? null, max_results ?? 100, page_offset ?? 0],
    result: "rows",
  }),
  defineTool({
    name: "describe_table",
    title: "Describe a table",
    description: "Columns (type, nullable, default, comment), keys, foreign keys both ways, indexes, constraints, row estimate, freshness.",
    input: { table, schema },
    sql: "select * from sextant.describe_table($1, $2)",
    args: ({ table, schema }) => [table, schema ?? null],
    result: "one",
    shape: formatTableDescription,
  }),
  defineTool({
    name: "get_metadata",
    title: "Data dictionary",
    description: "A compact data dictionary of a schema: tables, columns, keys, join paths, enums, sample values (not of sensitive columns).",
    input: { schema },
    sql: "select * from sextant.get_metadata($1)",
    args: ({ schema }) => [schema ?? null],
    result: "one",
    shape: formatDataDictionary,
  }),
  defineTool({
    name: "list_functions",
    title: "List functions",
    description: "Functions you can call in your schemas, with signatures and comments.",
    input: { schema },
    sql: "select * from sextant.list_functions($1)",
    args: ({ schema }) => [schema ?? null],
    result: "rows",
  }),
  defineTool({
    name: "sample_table",
    title: "Sample a table",
    description: "The first n rows (default 20) of a table or view, with sensitive columns masked.",
    input: { table, schema, n: z.number().optional().describe("Rows, 1 to 1000 (default 20)") },
    sql: "select * from sextant.sample_table($1, $2, $3)",
    args: ({ table, schema, n }) => [table, schema ?? null, n ?? 20],
    result: "one",
    shape: formatQueryResult,
  }),
];
