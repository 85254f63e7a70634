import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import { RunError } from "../errors.ts";
import { assertReachable } from "../hostGuard.ts";
import { meter } from "../meter.ts";
import { uniqueColumnName } from "../stageWriter.ts";

export interface PostgresSource {
  kind: "postgres";
  /** Usually {"secret": "..."}: resolved by the worker. */
  connection_string: string;
}

export interface PostgresEntity {
  name: string;
  /** A SELECT on the source, or `table` ("schema.table"). */
  query?: string;
  table?: string;
}

const quote = pg.escapeIdentifier;

/**
 * Copies the result of a query on another PostgreSQL into a staging table: column types from
 * the source (built-in types; others become text), rows streamed COPY to COPY in a read-only
 * transaction on the source.
 */
export async function loadPostgres(
  client: pg.ClientBase,
  schema: string,
  table: string,
  source: PostgresSource,
  entity: PostgresEntity,
  opts: { allowHosts: string[]; report: (bytes: number, lines: number) => Promise<boolean> },
): Promise<number> {
  if (typeof source.connection_string !== "string") throw new RunError("a postgres source needs connection_string (store it as a secret)");
  let host: string;
  try {
    host = new URL(source.connection_string).hostname || "localhost";
  } catch {
    throw new RunError("the postgres source's connection_string is not a URL (postgres://user:password@host/db)");
  }
  await assertReachable(host, opts.allowHosts);
  const sql = entity.query ?? (entity.table ? `table ${entity.table.split(".").map(quote).join(".")}` : undefined);
  if (!sql) throw new RunError(`postgres entity ${entity.name} needs a query or a table`);
  const remote = new pg.Client({ connectionString: source.connection_string, connectionTimeoutMillis: 10000 });
  remote.on("error", () => {});
  try {
    await remote.connect();
  } catch (error) {
    throw new RunError(`cannot connect to the postgres source: ${(error as Error).message}`, true);
  }
  try {
    await remote.query("begin transaction read only");
    let fields: pg.FieldDef[];
    try {
      fields = (await remote.query(`select * from (${sql}\n) as q limit 0`)).fields;
    } catch (error) {
      throw new RunError(`the source query of ${entity.name} failed: ${(error as Error).message}`);
    }
    const { rows: types } = await remote.query<{ oid: number; name: string; builtin: boolean }>(
      "select t.oid::int, format_type(t.oid, null) as name, t.typnamespace = 'pg_catalog'::regnamespace as builtin from pg_type as t where t.oid = any($1::oid[])",
      [fields.map((f) => f.dataTypeID)],
    );
    const taken = new Set<string>();
    const cols = fields.map((f) => {
      const name = uniqueColumnName(f.name, taken);
      const t = types.find((x) => x.oid === f.dataTypeID);
      return `${quote(name)} ${t?.builtin ? t.name : "text"}`;
    });
    const target = `${quote(schema)}.${quote(table)}`;
    await client.query(`create table ${target} (${cols.join(", ")})`);
    const into = client.query(copyFrom(`copy ${target} from stdin`));
    await pipeline(remote.query(copyTo(`copy (${sql}\n) to stdout`)), meter(opts.report), into);
    await remote.query("commit");
    return into.rowCount;
  } finally {
    await remote.end().catch(() => {});
  }
}
