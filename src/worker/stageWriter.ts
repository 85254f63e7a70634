import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

export type ColumnType = "boolean" | "bigint" | "numeric" | "date" | "timestamptz" | "jsonb" | "text";

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function typeOf(value: unknown): ColumnType | undefined {
  if (value === null || value === undefined) return undefined;
  switch (typeof value) {
    case "boolean":
      return "boolean";
    case "number":
      return Number.isSafeInteger(value) ? "bigint" : Number.isFinite(value) ? "numeric" : "text";
    case "string":
      return DATE.test(value) ? "date" : TIMESTAMP.test(value) && !Number.isNaN(Date.parse(value)) ? "timestamptz" : "text";
    case "object":
      return "jsonb";
    default:
      return "text";
  }
}

/** The narrowest type that holds both (text holds everything). */
export function widen(a: ColumnType, b: ColumnType): ColumnType {
  if (a === b) return a;
  const pair = new Set([a, b]);
  if (pair.has("bigint") && pair.has("numeric")) return "numeric";
  if (pair.has("date") && pair.has("timestamptz")) return "timestamptz";
  return "text";
}

/** A column name for `key` that is not in `taken` yet (suffix _2, _3, ...); adds it to `taken`. */
export function uniqueColumnName(key: string, taken: Set<string>): string {
  let name = columnName(key);
  for (let i = 2; taken.has(name); i++) name = `${columnName(key).slice(0, 56)}_${i}`;
  taken.add(name);
  return name;
}

/** A record key as a column name: lower-case identifier, at most 60 characters. */
export function columnName(key: string): string {
  let name = key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 60);
  if (!name) name = "column";
  if (/^[0-9]/.test(name)) name = "c_" + name;
  return name;
}

/** COPY text format: backslash, tab, newline and carriage return escaped; \N is null. */
function copyValue(value: unknown, type: ColumnType): string {
  if (value === null || value === undefined) return "\\N";
  let text: string;
  if (type === "jsonb" || (type === "text" && typeof value === "object")) text = JSON.stringify(value);
  else if (type === "boolean") text = value ? "t" : "f";
  else text = String(value);
  return text.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}

const quote = pg.escapeIdentifier;

/**
 * Writes JSON records into one staging table: columns are inferred from the records (new keys
 * add columns, a value that does not fit widens its column), each record is kept whole in
 * `_raw` (jsonb), and every batch goes in with one COPY.
 */
export class StageWriter {
  private readonly columns = new Map<string, { name: string; type: ColumnType | undefined }>();
  private readonly names = new Set<string>(["_raw"]);
  private created = false;
  rows = 0;

  constructor(
    private readonly client: pg.ClientBase,
    private readonly schema: string,
    private readonly table: string,
  ) {}

  private get target(): string {
    return `${quote(this.schema)}.${quote(this.table)}`;
  }

  async write(records: Record<string, unknown>[]): Promise<void> {
    const ddl: string[] = [];
    for (const record of records) {
      for (const [key, value] of Object.entries(record)) {
        const seen = typeOf(value);
        let column = this.columns.get(key);
        if (!column) {
          const name = uniqueColumnName(key, this.names);
          column = { name, type: seen };
          this.columns.set(key, column);
          if (this.created) ddl.push(`alter table ${this.target} add column ${quote(name)} ${seen ?? "text"}`);
          continue;
        }
        if (!seen || column.type === seen) continue;
        if (column.type === undefined) {
          column.type = seen;
          if (this.created) ddl.push(`alter table ${this.target} alter column ${quote(column.name)} type ${seen} using ${quote(column.name)}::text::${seen}`);
          continue;
        }
        const wider = widen(column.type, seen);
        if (wider !== column.type) {
          if (this.created) {
            const using = wider === "text" && column.type === "jsonb" ? `${quote(column.name)} #>> '{}'` : `${quote(column.name)}::${wider}`;
            ddl.push(`alter table ${this.target} alter column ${quote(column.name)} type ${wider} using ${using}`);
          }
          column.type = wider;
        }
      }
    }
    if (!this.created) {
      const cols = [...this.columns.values()].map((c) => `${quote(c.name)} ${c.type ?? "text"}`);
      await this.client.query(`create table ${this.target} (${[...cols, "_raw jsonb"].join(", ")})`);
      this.created = true;
    }
    for (const statement of ddl) await this.client.query(statement);
    if (records.length === 0) return;

    const entries = [...this.columns.entries()];
    const lines: string[] = [];
    for (const record of records) {
      const cells = entries.map(([key, c]) => copyValue(record[key], c.type ?? "text"));
      cells.push(copyValue(record, "jsonb"));
      lines.push(cells.join("\t"));
    }
    const list = [...entries.map(([, c]) => quote(c.name)), "_raw"].join(", ");
    await pipeline(Readable.from([lines.join("\n") + "\n"]), this.client.query(copyFrom(`copy ${this.target} (${list}) from stdin`)));
    this.rows += records.length;
  }

  /** An entity with no records still gets its (empty) table. */
  async finish(): Promise<void> {
    if (!this.created) await this.write([]);
  }
}
