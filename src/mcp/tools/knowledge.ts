import { z } from "zod";
import { object, rowsOutput } from "../outputSchemas.ts";
import { defineTool, type ToolSpec } from "../toolSpec.ts";

/** Knowledge area: sql/knowledge.sql. */
export const knowledgeTools: ToolSpec[] = [
  defineTool({
    name: "get_knowledge",
    title: "Team knowledge",
    description: "Your team's notes, learnings and entries about a table (or all).",
    group: "knowledge",
    input: { table: z.string().optional().describe("name or schema.table") },
    fn: "get_knowledge",
    params: { table: "table_name" },
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "search_knowledge",
    title: "Search team knowledge",
    description: "Search your team's notes, entries and learnings in plain English.",
    group: "knowledge",
    input: { query: z.string(), max_results: z.int32().optional() },
    fn: "search_knowledge",
    params: { query: "query", max_results: "max_results" },
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "save_learning",
    title: "Record a learning",
    description: "Record a learning (a correction, caveat or join), optionally about a table. Analysts+.",
    group: "knowledge",
    input: {
      learning: z.string(),
      table: z.string().optional(),
      confidence: z.number().optional().describe("0 to 1 (default 0.5)"),
    },
    fn: "save_learning",
    params: { learning: "learning", table: "table_name", confidence: "confidence" },
    select: "id, table_ref, learning, confidence, status, recorded_by, created_at from {call}",
    output: object(["id", "learning", "status"]),
    result: "one",
    writes: true,
  }),
];
