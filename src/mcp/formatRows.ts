const UTC_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?\+00:00$/;

/** Text as a cell: tabs and newlines escaped, UTC timestamps ending in Z (see cell). */
function textCell(text: string): string {
  // Only a string 25 characters or longer that ends in "0" (48) can be a "+00:00" timestamp.
  if (text.length >= 25 && text.charCodeAt(text.length - 1) === 48 && text.endsWith("+00:00") && UTC_ISO.test(text)) text = `${text.slice(0, -6)}Z`;
  // One scan for the common case (nothing to escape); 7,000 cells of a 1,000-row page otherwise
  // cost four regular-expression passes each.
  return ESCAPED.test(text) ? text.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r") : text;
}

/**
 * A value as one TSV cell: null is empty, tabs and newlines are escaped, objects are JSON,
 * booleans are PostgreSQL's t / f, UTC timestamps end in Z (the same instant, five bytes
 * shorter). The column types are listed above the rows, so nothing is ambiguous.
 */
function cell(value: unknown): string {
  switch (typeof value) {
    case "string":
      return textCell(value);
    case "number":
      return String(value);
    case "boolean":
      return value ? "t" : "f";
    case "undefined":
      return "";
    case "object":
      // (JSON text and toISOString() never end in "+00:00": only strings are shortened.)
      return value === null ? "" : textCell(value instanceof Date ? value.toISOString() : JSON.stringify(value));
    default:
      return textCell(String(value));
  }
}

const ESCAPED = /[\\\t\n\r]/;

/**
 * Rows as compact tab-separated text with a header line: about a third of the bytes of
 * pretty JSON for wide results, and easy for a model to read.
 */
export function formatRows(rows: Record<string, unknown>[], columns?: string[]): string {
  const names = columns ?? Object.keys(rows[0] ?? {});
  let out = names.join("\t");
  for (const row of rows) {
    out += `\n${cell(row[names[0]!])}`;
    for (let i = 1; i < names.length; i++) out += `\t${cell(row[names[i]!])}`;
  }
  return out;
}

/**
 * `rows` (objects keyed by `names`) in one pass: the TSV of formatRows, byte for byte, and each
 * row as an array of its values in the order of `names` (a missing key is null). The arrays hold
 * the parsed values themselves (numbers, booleans, null, nested JSON), not copies.
 */
export function tabulate(rows: Record<string, unknown>[], names: string[]): { tsv: string; values: unknown[][] } {
  const n = names.length;
  const values: unknown[][] = new Array(rows.length);
  // Lines joined once, each from its cells joined once: ~10% less CPU than appending 7,000 cells
  // of a 1,000-row page one by one (a chain of string pieces to flatten later).
  const lines: string[] = new Array(rows.length + 1);
  const cells: string[] = new Array(n);
  lines[0] = names.join("\t");
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const array: unknown[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const v = row[names[i]!];
      array[i] = v === undefined ? null : v;
      cells[i] = cell(v);
    }
    lines[r + 1] = cells.join("\t");
    values[r] = array;
  }
  return { tsv: lines.join("\n"), values };
}
