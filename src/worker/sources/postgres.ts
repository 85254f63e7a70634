import net from "node:net";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import { RunError } from "../errors.ts";
import { resolveReachable } from "../hostGuard.ts";
import { meter } from "../meter.ts";
import { uniqueColumnName } from "../stageWriter.ts";
import { inTransaction } from "../../db/transaction.ts";
import { meterReport, type SourceKind } from "./kind.ts";

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

/** The only parts of a connection string a source may set. */
export interface PostgresTarget {
  host: string;
  port: number;
  database: string | undefined;
  user: string | undefined;
  password: string | undefined;
  sslmode: "disable" | "prefer" | "require" | "verify-ca" | "verify-full" | undefined;
}

const SSLMODES = new Set(["disable", "prefer", "require", "verify-ca", "verify-full"]);

/**
 * Parses a source's connection string into host, port, dbname, user, password and sslmode —
 * nothing else. Every other parameter (a second `host`, `hostaddr`, `options`, `service`,
 * `passfile`, `sslrootcert`, `sslcert`, `sslkey`, ...) is refused: some override the host that
 * was checked, others make the worker read local files.
 */
export function parsePostgresTarget(connectionString: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new RunError("the postgres source's connection_string is not a URL (postgres://user:password@host:port/db)");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new RunError(`the postgres source's connection_string starts with ${url.protocol}, not postgres://`);
  }
  const host = url.hostname;
  if (!host || !(/^[A-Za-z0-9.-]+$/.test(host) || /^\[[0-9A-Fa-f:.]+\]$/.test(host))) {
    throw new RunError("the postgres source's connection_string needs one host name or address", false, "Several hosts, sockets and escapes are not supported.");
  }
  const port = url.port ? Number(url.port) : 5432;
  for (const key of new Set(url.searchParams.keys())) {
    if (key !== "sslmode") {
      throw new RunError(`the postgres source's connection_string may not set ${key}`, false,
        "Only host, port, dbname, user, password (in the URL) and ?sslmode= are accepted.");
    }
  }
  if (url.searchParams.getAll("sslmode").length > 1) throw new RunError("the postgres source's connection_string sets sslmode twice");
  const sslmode = url.searchParams.get("sslmode") ?? undefined;
  if (sslmode !== undefined && !SSLMODES.has(sslmode)) {
    throw new RunError(`sslmode ${sslmode} is not one of disable, prefer, require, verify-ca, verify-full`);
  }
  const decode = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      throw new RunError("the postgres source's connection_string has a bad %-escape");
    }
  };
  const database = url.pathname.replace(/^\//, "");
  if (database.includes("/")) throw new RunError("the postgres source's connection_string names its database once, after the host");
  return {
    host,
    port,
    database: database ? decode(database) : undefined,
    user: url.username ? decode(url.username) : undefined,
    password: url.password ? decode(url.password) : undefined,
    sslmode: sslmode as PostgresTarget["sslmode"],
  };
}

/**
 * The local type for a source column, by the type's OID, from a fixed list of built-in types
 * (their OIDs are the same on every PostgreSQL): a remote server's type names are never pasted
 * into SQL (issue 13: a hostile server named a type `int4); set local role postgres; ...`).
 * Anything else (extension and user types, domains, unknown OIDs) loads as text.
 */
const BUILTIN_TYPES: ReadonlyMap<number, string> = new Map([
  [16, "boolean"], [17, "bytea"], [20, "bigint"], [21, "smallint"], [23, "integer"], [25, "text"], [114, "json"],
  [700, "real"], [701, "double precision"], [1042, "text"], [1043, "character varying"], [1082, "date"],
  [1083, "time"], [1114, "timestamp"], [1184, "timestamptz"], [1186, "interval"], [1266, "timetz"], [1700, "numeric"],
  [2950, "uuid"], [3802, "jsonb"], [650, "cidr"], [869, "inet"], [829, "macaddr"], [774, "macaddr8"],
  [1000, "boolean[]"], [1005, "smallint[]"], [1007, "integer[]"], [1016, "bigint[]"], [1009, "text[]"], [1015, "character varying[]"],
  [1021, "real[]"], [1022, "double precision[]"], [1231, "numeric[]"], [1182, "date[]"], [1115, "timestamp[]"], [1185, "timestamptz[]"],
  [2951, "uuid[]"], [199, "json[]"], [3807, "jsonb[]"],
]);

export function localType(oid: number): string {
  return BUILTIN_TYPES.get(oid) ?? "text";
}

/**
 * Copies the result of a query on another PostgreSQL into a staging table: column types from
 * the source's type OIDs (built-in types; others become text), rows streamed COPY to COPY in a
 * read-only transaction on the source. The connection goes to the address that was checked.
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
  const target = parsePostgresTarget(source.connection_string);
  const { address } = await resolveReachable(target.host, target.port, 5432, opts.allowHosts);
  const sql = entity.query ?? (entity.table ? `table ${entity.table.split(".").map(quote).join(".")}` : undefined);
  if (!sql) throw new RunError(`postgres entity ${entity.name} needs a query or a table`);
  const hostname = target.host.replace(/^\[|\]$/g, "");
  const ssl = !target.sslmode || target.sslmode === "disable"
    ? false
    : { rejectUnauthorized: target.sslmode === "verify-ca" || target.sslmode === "verify-full",
        ...(net.isIP(hostname) ? {} : { servername: hostname }),
        ...(target.sslmode === "verify-ca" ? { checkServerIdentity: () => undefined } : {}) };
  // Built field by field, never from the string: pg would otherwise fill what is missing from
  // the worker's environment (PGPASSWORD, PGSSLMODE) and ~/.pgpass, and hand the operator's own
  // password to the source. A function password is taken as is.
  const password = target.password ?? "";
  const remote = new pg.Client({
    host: address, port: target.port, database: target.database ?? target.user ?? "postgres", user: target.user ?? "postgres",
    password: () => password, ssl, connectionTimeoutMillis: 10000,
  });
  remote.on("error", () => {});
  try {
    await remote.connect();
  } catch (error) {
    throw new RunError(`cannot connect to the postgres source: ${(error as Error).message}`, true);
  }
  try {
    return await inTransaction(remote, async () => {
      let fields: pg.FieldDef[];
      try {
        fields = (await remote.query(`select * from (${sql}\n) as q limit 0`)).fields;
      } catch (error) {
        throw new RunError(`the source query of ${entity.name} failed: ${(error as Error).message}`);
      }
      const taken = new Set<string>();
      const cols = fields.map((f) => `${quote(uniqueColumnName(f.name, taken))} ${localType(f.dataTypeID)}`);
      const stage = `${quote(schema)}.${quote(table)}`;
      await client.query(`create table ${stage} (${cols.join(", ")})`);
      const into = client.query(copyFrom(`copy ${stage} from stdin`));
      await pipeline(remote.query(copyTo(`copy (${sql}\n) to stdout`)), meter(opts.report), into);
      return into.rowCount;
    }, "begin transaction read only");
  } finally {
    await remote.end().catch(() => {});
  }
}

/** Source kind `postgres`: a query or table of another PostgreSQL, copied COPY to COPY (loadPostgres). */
export const postgresSource: SourceKind = {
  open(source, deps) {
    return ({ client, schema, entity, progress }) =>
      loadPostgres(client, schema, entity.name, source as unknown as PostgresSource, entity as unknown as PostgresEntity, {
        allowHosts: deps.allowHosts, report: meterReport(progress),
      });
  },
};
