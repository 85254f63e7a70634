import { InvalidArgumentError, type Command } from "commander";
import { withContext } from "./context.ts";

/** The access levels a command may hand out, lowest first (sextant.access_level in SQL). */
export const LEVELS = ["viewer", "analyst", "admin"];

/** "30d", "12h", "90m" → an interval PostgreSQL understands. */
export function parseDuration(value: string): string {
  const m = /^(\d{1,5})([dhm])$/.exec(value);
  if (!m) throw new InvalidArgumentError('use a number and a unit, e.g. "30d", "12h" or "90m"');
  return `${m[1]} ${{ d: "days", h: "hours", m: "minutes" }[m[2] as "d" | "h" | "m"]}`;
}

/** Commander reducer for a repeatable option: each use adds one value. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Prints rows as an aligned plain-text table on stdout, `(none)` when there are none. */
export function printTable(rows: Record<string, unknown>[]): void {
  if (rows.length === 0) return void process.stdout.write("(none)\n");
  const cols = Object.keys(rows[0]!);
  const text = (v: unknown) => (v instanceof Date ? v.toISOString() : v === null ? "" : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => text(r[c]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  process.stdout.write([line(cols), ...rows.map((r) => line(cols.map((c) => text(r[c]))))].join("\n") + "\n");
}

/**
 * Adds `<parent> <name> [--tenant <slug>]`, which prints the rows of `sql` as a table; `sql`
 * takes the tenant as $1 (null: every tenant's).
 */
export function addListCommand(parent: Command, name: string, description: string, sql: string, tenantHelp = "only this tenant's"): void {
  parent
    .command(name)
    .description(description)
    .option("--tenant <slug>", tenantHelp)
    .action((opts: { tenant?: string }) =>
      withContext(async ({ admin }) => printTable((await admin.query(sql, [opts.tenant ?? null])).rows)),
    );
}
