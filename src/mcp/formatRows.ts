const UTC_ISO = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)\+00:00$/;

/**
 * A value as one TSV cell: null is empty, tabs and newlines are escaped, objects are JSON,
 * booleans are PostgreSQL's t / f, UTC timestamps end in Z (the same instant, five bytes
 * shorter). The column types are listed above the rows, so nothing is ambiguous.
 */
function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? "t" : "f";
  const text =
    value instanceof Date ? value.toISOString() : typeof value === "object" ? JSON.stringify(value) : String(value).replace(UTC_ISO, "$1Z");
  return text.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
}

/**
 * Rows as compact tab-separated text with a header line: about a third of the bytes of
 * pretty JSON for wide results, and easy for a model to read.
 */
export function formatRows(rows: Record<string, unknown>[], columns?: string[]): string {
  const names = columns ?? Object.keys(rows[0] ?? {});
  const lines = [names.join("\t")];
  for (const row of rows) lines.push(names.map((n) => cell(row[n])).join("\t"));
  return lines.join("\n");
}
