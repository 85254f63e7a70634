import type { ToolCall } from "./llm/types.ts";
import type { ToolOutcome } from "./tools.ts";

/** What an answer carries besides its text: the SQL that ran, the dbt models used, a table, a chart. */
export interface AnswerDetails {
  sql: { sql: string; row_count: number }[];
  models: string[];
  /** The last query's result: rows are arrays in the order of columns, as the query tool gives them. */
  table?: { columns: { name: string; type: string }[]; rows: unknown[][]; truncated: boolean };
  chart?: { type: "bar" | "line" | "pie"; x: string; y: string };
}

const TABLE_ROWS = 200;

/** Collects the details from the tool calls of one answer, as they happen. */
export class DetailsCollector {
  readonly sql: AnswerDetails["sql"] = [];
  private readonly looked = new Set<string>();
  private readonly hits = new Map<string, string>(); // table name (lower case) -> model name
  private table?: AnswerDetails["table"];

  add(call: ToolCall, outcome: ToolOutcome): void {
    if (outcome.isError || !outcome.structured) return;
    const s = outcome.structured;
    if (call.name === "query" && typeof call.arguments.sql === "string" && Array.isArray(s.columns) && Array.isArray(s.rows)) {
      this.sql.push({ sql: call.arguments.sql, row_count: Number(s.row_count ?? s.rows.length) });
      this.table = {
        columns: (s.columns as { name: string; type: string }[]).map((c) => ({ name: String(c.name), type: String(c.type) })),
        rows: (s.rows as unknown[][]).slice(0, TABLE_ROWS),
        truncated: s.truncated === true || s.rows.length > TABLE_ROWS,
      };
    }
    if (call.name === "get_model_details" && typeof s.name === "string") this.looked.add(s.name);
    if (call.name === "search_dbt_models" && Array.isArray(s.rows)) {
      for (const hit of s.rows as { name?: unknown; relation_name?: unknown }[]) {
        const relation = typeof hit.relation_name === "string" ? hit.relation_name : "";
        const table = relation.split(".").pop()?.replace(/"/g, "").toLowerCase();
        if (typeof hit.name === "string" && table) this.hits.set(table, hit.name);
      }
    }
  }

  /** The models the answer used: those looked up in detail, and search hits whose table the SQL read. */
  models(): string[] {
    const used = new Set(this.looked);
    const sqlText = this.sql.map((q) => q.sql.toLowerCase()).join("\n");
    for (const [table, model] of this.hits) {
      const word = table.replace(/[^a-z0-9_]/g, "");
      if (word && new RegExp(`\\b${word}\\b`).test(sqlText)) used.add(model);
    }
    return [...used].slice(0, 50);
  }

  /**
   * The final details. A last line `chart: bar x=<column> y=<column>` in the model's text
   * asks for a chart of the last result; it is kept only when both columns are in that result.
   */
  finish(text: string): { text: string; details: AnswerDetails } {
    let chart: AnswerDetails["chart"];
    const m = /\n?^chart:\s*(bar|line|pie)\s+x=(\S+)\s+y=(\S+)\s*$/im.exec(text);
    let body = text;
    if (m) {
      body = (text.slice(0, m.index) + text.slice(m.index + m[0].length)).trim();
      const names = new Set(this.table?.columns.map((c) => c.name));
      if (names.has(m[2]!) && names.has(m[3]!)) chart = { type: m[1]!.toLowerCase() as "bar", x: m[2]!, y: m[3]! };
    }
    return { text: body, details: { sql: this.sql, models: this.models(), ...(this.table ? { table: this.table } : {}), ...(chart ? { chart } : {}) } };
  }
}
