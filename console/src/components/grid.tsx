/** A result grid: a real <table> (screen readers announce headers), values always as text. */
export interface Column {
  name: string;
  type?: string;
}

export function cellText(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/**
 * A result's rows are arrays of values in the order of its columns (the query tool's
 * structuredContent, src/mcp/formatResult.ts).
 */
export type Row = unknown[];

export function Grid(props: { columns: Column[]; rows: Row[]; caption: string; firstRow?: number }) {
  const { columns, rows } = props;
  return (
    <div class="grid-wrap" tabIndex={0} role="region" aria-label={props.caption}>
      <table class="grid">
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col" class="rownum">#</th>
            {columns.map((c) => (
              <th scope="col" key={c.name}>
                {c.name}
                {c.type ? <span class="type"> {c.type}</span> : null}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td class="rownum">{(props.firstRow ?? 0) + i + 1}</td>
              {columns.map((c, k) => (
                <td key={c.name} class={r[k] === null ? "null" : undefined}>{r[k] === null ? "null" : cellText(r[k])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Rows as CSV (RFC 4180 quoting; a leading =+-@ is prefixed with ' so spreadsheets do not run it). */
export function toCsv(columns: Column[], rows: Row[]): string {
  const q = (v: unknown) => {
    let s = cellText(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.map((c) => q(c.name)).join(","), ...rows.map((r) => columns.map((_, k) => q(r[k])).join(","))].join("\r\n") + "\r\n";
}
