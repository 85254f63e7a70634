import { z } from "zod";
import { formatDataDictionary, formatTableDescription } from "../formatCatalog.ts";
import { formatQueryResult } from "../formatResult.ts";
import { object, queryOutput, rowOutput, rowsOutput } from "../outputSchemas.ts";
import { defineTool, type ToolSpec } from "../toolSpec.ts";
import { ONE_RESULT } from "./query.ts";

const schema = z.string().optional();
const table = z.string().describe("name or schema.table");
// PostgreSQL's integer: a larger number reached the SQL as a bigint and found no function (42883).
const count = z.int32().min(0);

/** Catalog area: sql/catalog.sql and sql/catalog_tables.sql (sample_table: sql/query.sql). */
export const catalogTools: ToolSpec[] = [
  defineTool({
    name: "whoami",
    title: "Who am I",
    description: "Your tenant, access level, role and principal.",
    group: "catalog",
    input: {},
    fn: "whoami",
    params: {},
    output: object(["tenant", "access_level", "principal"]),
    result: "one",
  }),
  defineTool({
    name: "list_databases",
    title: "List databases",
    description: "The data sources your tenant can read.",
    group: "catalog",
    input: {},
    fn: "list_databases",
    params: {},
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "list_schemas",
    title: "List schemas",
    description: "Schemas you can read, with their table counts.",
    group: "catalog",
    input: {},
    fn: "list_schemas",
    params: {},
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "list_tables",
    title: "List tables",
    description: "Tables and views you can read: comments, row estimates, size, freshness.",
    group: "catalog",
    input: {
      schema,
      max_results: count.optional().describe("1-1000, default 100"),
      page_offset: count.optional(),
    },
    fn: "list_tables",
    params: { schema: "schema_name", max_results: "max_results", page_offset: "page_offset" },
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "describe_table",
    title: "Describe a table",
    description: "Columns (type, nullable, default, comment), keys, foreign keys, indexes, constraints, row estimate, freshness.",
    group: "catalog",
    input: { table, schema },
    fn: "describe_table",
    params: { table: "table_name", schema: "schema_name" },
    output: rowOutput,
    result: "one",
    shape: formatTableDescription,
  }),
  defineTool({
    name: "get_metadata",
    title: "Data dictionary",
    description: "Data dictionary of a schema: tables, columns, keys, join paths, enums, sample values (not of sensitive columns).",
    group: "catalog",
    input: { schema },
    fn: "get_metadata",
    params: { schema: "schema_name" },
    output: rowOutput,
    result: "one",
    shape: formatDataDictionary,
  }),
  defineTool({
    name: "list_functions",
    title: "List functions",
    description: "Functions in your schemas: signatures, comments.",
    group: "catalog",
    input: { schema },
    fn: "list_functions",
    params: { schema: "schema_name" },
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "sample_table",
    title: "Sample a table",
    description: "The first n rows of a table or view; sensitive columns masked.",
    group: "catalog",
    input: { table, schema, n: count.optional().describe("1-1000, default 20") },
    fn: "sample_table",
    params: { table: "table_name", schema: "schema_name", n: "n" },
    select: ONE_RESULT,
    output: queryOutput,
    result: "one",
    shape: formatQueryResult,
  }),
];
