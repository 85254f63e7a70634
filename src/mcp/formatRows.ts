const UTC_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?\+00:00$/;

/**
 * A value as one TSV cell: null is empty, tabs and newlines are escaped, objects are JSON,
 * booleans are PostgreSQL's t / f, UTC timestamps end in Z (the same instant, five bytes
 * shorter). The column types are listed above the rows, so nothing is ambiguous.
 */
function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? "t" : "f";
  let text = typeof value === "string" ? value : value instanceof Date ? value.toISOString() : typeof value === "object" ? JSON.stringify(value) : String(value);
  if (typeof value === "string" && text.endsWith("+00:00") && UTC_ISO.test(text)) text = `${text.slice(0, -6)}Z`;
  // One scan for the common case (nothing to escape); 7,000 cells of a 1,000-row page otherwise
  // cost four regular-expression passes each.
  return ESCAPED.test(text) ? text.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r") : text;
}

const ESCAPED = /[\\\t\n\r]/;

/**
 * Rows as compact tab-separated text with a header line: about a third of the bytes of
 * pretty JSON for wide results, and easy for a model to read.
 */
export function formatRows(rows: Record<string, unknown>[], columns?: string[]): string {
  const names = columns ?? Object.keys(rows[0] ?? {});
  const lines = [names.join("\t")];
  for (const row of rows) {
    let line = cell(row[names[0]!]);
    for (let i = 1; i < names.length; i++) line += `\t${cell(row[names[i]!])}`;
    lines.push(line);
  }
  return lines.join("\n");
}
