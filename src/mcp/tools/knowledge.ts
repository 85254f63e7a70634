import { z } from "zod";
import { defineTool, type ToolSpec } from "../toolSpec.ts";

/** Knowledge area: sql/knowledge.sql. */
export const knowledgeTools: ToolSpec[] = [
  defineTool({
    name: "get_knowledge",
    title: "Team knowledge about a table",
    description: "What your team wrote about a table (or all tables): notes, learnings, entries.",
    input: { table: z.string().optional().describe('Table name or "schema.table"') },
    sql: "select * from sextant.get_knowledge($1)",
    args: ({ table }) => [table ?? null],
    result: "rows",
  }),
  defineTool({
    name: "search_knowledge",
    title: "Search team knowledge",
    description: "Search your team's notes, entries and learnings in plain English.",
    input: { query: z.string(), max_results: z.number().optional() },
    sql: "select * from sextant.search_knowledge($1, $2)",
    args: ({ query, max_results }) => [query, max_results ?? 10],
    result: "rows",
  }),
  defineTool({
    name: "save_learning",
    title: "Record a learning",
    description: "Record a learning (a correction, caveat or join), optionally about a table, with confidence 0-1. Analysts+.",
    input: {
      learning: z.string().describe("One or two sentences"),
      table: z.string().optional(),
      confidence: z.number().optional().describe("0 to 1 (default 0.5)"),
    },
    sql: "select id, table_ref, learning, confidence, status, recorded_by, created_at from sextant.save_learning($1, $2, $3)",
    args: ({ learning, table, confidence }) => [learning, table ?? null, confidence ?? 0.5],
    result: "one",
    writes: true,
  }),
];
