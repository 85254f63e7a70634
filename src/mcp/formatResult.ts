import { formatRows } from "./formatRows.ts";
import { fenceUntrusted } from "./formatUntrusted.ts";

interface QueryResultRow {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
  row_count: number;
  truncated: boolean;
  next_offset: number | null;
  elapsed_ms: number | string;
}

/**
 * A query result for a model to read: a one-line summary, then the rows as TSV inside a fence
 * whose marker is random per response, so no value can close the fence early or pass for a
 * message from Sextant.
 */
export function formatQueryResult(row: Record<string, unknown>): { text: string; structured: Record<string, unknown> } {
  const r = row as unknown as QueryResultRow;
  const names = r.columns.map((c) => c.name);
  const summary =
    `${r.row_count} row${r.row_count === 1 ? "" : "s"} in ${Number(r.elapsed_ms)} ms` +
    (r.truncated ? `; truncated: more rows exist, call again with row_offset=${r.next_offset} for the next page` : "");
  const types = r.columns.map((c) => `${c.name}:${c.type}`).join(", ");
  // Column names are the query's (or a table's) own: inside the fence with the rows.
  const text = [
    summary,
    fenceUntrusted(`columns: ${types} (booleans as t/f, null as an empty cell)\n${formatRows(r.rows, names)}`, "rows", "the database"),
  ].join("\n");
  return { text, structured: { ...r, elapsed_ms: Number(r.elapsed_ms) } };
}
