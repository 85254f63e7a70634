import { z } from "zod";
import { guardSql } from "../../query/guard.ts";
import { formatQueryResult } from "../formatResult.ts";
import { queryOutput, rowOutput } from "../outputSchemas.ts";
import { defineTool, type ToolSpec } from "../toolSpec.ts";

/**
 * The result of sextant.query / sample_table as one value taken apart once: `select * from`
 * would put it (1,000 rows of JSON) in a tuplestore first (~9% of the call's CPU in PostgreSQL).
 */
export const ONE_RESULT = "(r).* from (select {call} as r offset 0) as s";

/** Query area: sql/query.sql. The parser guard runs before the SQL reaches PostgreSQL. */
export const queryTools: ToolSpec[] = [
  defineTool({
    name: "query",
    title: "Run a SQL query",
    description:
      "Run one read-only SELECT/WITH/VALUES/TABLE statement as your tenant: columns with types, rows. " +
      "max_rows is capped by your tenant; when truncated, call again with row_offset=next_offset.",
    group: "query",
    input: {
      sql: z.string(),
      max_rows: z.int32().min(0).optional().describe("default 500"),
      row_offset: z.int32().min(0).optional(),
    },
    guard: ({ sql }) => guardSql(sql),
    fn: "query",
    params: { sql: "sql", max_rows: "max_rows", row_offset: "row_offset" },
    select: ONE_RESULT,
    output: queryOutput,
    result: "one",
    shape: formatQueryResult,
    auditSql: ({ sql }) => sql,
  }),
  defineTool({
    name: "explain_query",
    title: "Explain a query",
    description:
      "A query's plan, not run: estimated cost and rows, and whether it is within your tenant's budget.",
    group: "query",
    input: { sql: z.string() },
    guard: ({ sql }) => guardSql(sql),
    fn: "explain_query",
    params: { sql: "sql" },
    output: rowOutput,
    result: "one",
    auditSql: ({ sql }) => sql,
  }),
];
