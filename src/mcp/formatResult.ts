import { tabulate } from "./formatRows.ts";
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
 *
 * structuredContent is columnar: `rows` holds each row as an array of its values in the order
 * of `columns`, as most databases' HTTP APIs answer. Objects repeated every column name in every
 * row, and every byte is serialized, sent and parsed on each call: 1,000 rows of Pagila's rental
 * (7 columns) were a 280 KB answer (78 KB of it the TSV), as arrays 186 KB. (sextant.query's own
 * result, as GraphQL and psql see it, keeps objects.) The TSV and the arrays are made in one
 * pass over the parsed rows.
 */
export function formatQueryResult(row: Record<string, unknown>): { text: string; structured: Record<string, unknown> } {
  const r = row as unknown as QueryResultRow;
  const names = r.columns.map((c) => c.name);
  const summary =
    `${r.row_count} row${r.row_count === 1 ? "" : "s"} in ${Number(r.elapsed_ms)} ms` +
    (r.truncated ? `; truncated: more rows exist, call again with row_offset=${r.next_offset} for the next page` : "");
  const types = r.columns.map((c) => `${c.name}:${c.type}`).join(", ");
  const { tsv, values } = tabulate(r.rows, names);
  // Column names are the query's (or a table's) own: inside the fence with the rows.
  const text = `${summary}\n${fenceUntrusted(`columns: ${types} (booleans as t/f, null as an empty cell)\n${tsv}`, "rows", "the database")}`;
  return {
    text,
    structured: { columns: r.columns, rows: values, row_count: r.row_count, truncated: r.truncated, next_offset: r.next_offset, elapsed_ms: Number(r.elapsed_ms) },
  };
}
