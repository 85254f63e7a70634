import { z } from "zod";
import { guardSql } from "../../query/guard.ts";
import { formatQueryResult } from "../formatResult.ts";
import { defineTool, type ToolSpec } from "../toolSpec.ts";

/** Query area: sql/query.sql. The parser guard runs before the SQL reaches PostgreSQL. */
export const queryTools: ToolSpec[] = [
  defineTool({
    name: "query",
    title: "Run a read-only SQL query",
    description:
      "Run one read-only SELECT/WITH/VALUES/TABLE statement as your tenant. Returns columns with types and rows; " +
      "max_rows is capped by your tenant. When truncated, call again with row_offset=next_offset.",
    input: {
      sql: z.string().describe("One PostgreSQL SELECT, WITH ... SELECT, VALUES or TABLE statement"),
      max_rows: z.number().optional().describe("At most this many rows (default 500)"),
      row_offset: z.number().optional().describe("Skip this many rows (for the next page)"),
    },
    guard: ({ sql }) => guardSql(sql),
    sql: "select * from sextant.query($1, $2, $3)",
    args: ({ sql, max_rows, row_offset }) => [sql, max_rows ?? 500, row_offset ?? 0],
    result: "one",
    shape: formatQueryResult,
    auditSql: ({ sql }) => sql,
  }),
  defineTool({
    name: "explain_query",
    title: "Explain a query",
    description:
      "The plan of a query without running it: estimated cost and rows, and whether the cost is within your tenant's budget.",
    input: { sql: z.string().describe("The statement to explain (same rules as query)") },
    guard: ({ sql }) => guardSql(sql),
    sql: "select * from sextant.explain_query($1)",
    args: ({ sql }) => [sql],
    result: "one",
    auditSql: ({ sql }) => sql,
  }),
];
