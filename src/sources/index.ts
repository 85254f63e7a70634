import type pg from "pg";
import { SextantError } from "../db/errors.ts";
import { resolveReachable } from "../worker/hostGuard.ts";
import { parsePostgresTarget } from "../worker/sources/postgres.ts";
import { inTransaction } from "../db/transaction.ts";

/** What an operator gives `sextant source add`. */
export interface SourceSpec {
  tenant: string;
  name: string;
  /** postgres://user:password@host:port/dbname?sslmode=… — nothing else is accepted. */
  url: string;
  schemas: string[];
}

/** A source as `sextant source list` shows it: where it is and how its last refresh went; never a password. */
export interface SourceRow {
  tenant: string;
  name: string;
  host: string;
  port: number;
  dbname: string;
  user: string;
  schemas: string[];
  server_version: string | null;
  status: string;
  table_count: number;
  last_refreshed_at: Date | null;
  last_error: string | null;
}

const COLUMNS = `tenant_slug as tenant, name, host, port, dbname, remote_user as "user", remote_schemas as schemas,
  server_version, status, table_count, last_refreshed_at, last_error`;

/**
 * Runs `sql` in a transaction whose statements the server does not log with their parameters
 * (a superuser's log_statement = all would write the bound password to the server log). An
 * admin that may not change those settings keeps the server's own.
 */
async function withoutStatementLog<T>(admin: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  return inTransaction(admin, async () => {
    await admin.query("savepoint quiet");
    try {
      await admin.query("set local log_statement = 'none'; set local log_min_duration_statement = -1; set local log_parameter_max_length = 0; set local log_parameter_max_length_on_error = 0");
      await admin.query("release savepoint quiet");
    } catch {
      await admin.query("rollback to savepoint quiet");
    }
    return fn();
  });
}

/**
 * Adds a source: the URL is reduced to host, port, dbname, user, password and sslmode (the
 * pipelines' parser), the host must pass the pipelines' address check (private and loopback
 * addresses only when SEXTANT_SOURCE_ALLOW_HOSTS allows host:port), and PostgreSQL connects to
 * the address that was checked. The first import happens in the same transaction: when it
 * fails, nothing is left behind. Errors never carry the password.
 */
export async function addSource(admin: pg.ClientBase, allowHosts: string[], spec: SourceSpec): Promise<SourceRow> {
  const target = parsePostgresTarget(spec.url);
  if (!target.user || !target.database) {
    throw new SextantError("SX400", "the source URL must name a user and a database", "postgres://user:password@host:5432/dbname");
  }
  if (!target.password) {
    throw new SextantError("SX400", "the source URL must carry a password", "postgres_fdw connects for a tenant role only with password authentication.");
  }
  if (spec.schemas.length === 0) throw new SextantError("SX400", "name at least one remote schema (--schema)");
  const host = target.host.replace(/^\[|\]$/g, "");
  const { address } = await resolveReachable(target.host, target.port, 5432, allowHosts);
  return withoutStatementLog(admin, async () => {
    await admin.query(
      "select from sextant_private.add_source($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
      [spec.tenant, spec.name, host, address, target.port, target.database, target.user, target.password, target.sslmode ?? null, spec.schemas],
    );
    return (await admin.query(`select ${COLUMNS} from sextant.sources where tenant_slug = $1 and name = $2`, [spec.tenant, spec.name])).rows[0] as SourceRow;
  });
}

/** The sources of one tenant, or of all tenants. */
export async function listSources(admin: pg.ClientBase, tenant?: string): Promise<SourceRow[]> {
  const { rows } = await admin.query(
    `select ${COLUMNS} from sextant.sources where $1::text is null or tenant_slug = $1 order by tenant_slug, name`,
    [tenant ?? null],
  );
  return rows as SourceRow[];
}

/**
 * Re-imports a source now (new, changed and dropped remote tables follow). A failure is
 * recorded on the source (status failed, last_error) and the previous tables stay; the row
 * says so.
 */
export async function refreshSource(admin: pg.ClientBase, tenant: string, name: string): Promise<SourceRow> {
  await admin.query("select from sextant_private.refresh_source($1, $2, false)", [tenant, name]);
  return (await admin.query(`select ${COLUMNS} from sextant.sources where tenant_slug = $1 and name = $2`, [tenant, name])).rows[0] as SourceRow;
}

/** Drops a source: its tables, schemas, server and user mapping. */
export async function removeSource(admin: pg.ClientBase, tenant: string, name: string): Promise<void> {
  await admin.query("select sextant_private.remove_source($1, $2)", [tenant, name]);
}

/** Refreshes every source not refreshed for `olderThan` (the worker's schedule); one failure stops none of the others. */
export async function refreshDueSources(admin: pg.ClientBase, olderThan = "1 hour"): Promise<{ refreshed: number; failed: number }> {
  const { rows } = await admin.query("select refreshed, failed from sextant_private.refresh_due_sources($1::interval)", [olderThan]);
  return rows[0] as { refreshed: number; failed: number };
}

/** A host a tenant's admins may add sources on, as `sextant source hosts` shows it. */
export interface SourceHostRow {
  tenant: string;
  host: string;
  port: number;
  address: string;
  added_at: Date;
}

/** Splits "host", "host:port", "[v6]" or "[v6]:port" (default port 5432). */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(text.trim());
  const port = m?.[3] ? Number(m[3]) : 5432;
  if (!m || port < 1 || port > 65535) throw new SextantError("SX400", `"${text.slice(0, 100)}" is not host[:port]`, "e.g. db.example.com:5432 or [2001:db8::1]:5432");
  return { host: (m[1] ?? m[2]!).toLowerCase(), port };
}

/**
 * Lets a tenant's admins add sources on host:port (GraphQL addSource, psql sextant.add_source).
 * The host goes through the same check as `source add` (private and loopback addresses only
 * when SEXTANT_SOURCE_ALLOW_HOSTS allows host:port) and the address that passed is stored:
 * their sources connect to it, whatever DNS answers later (allow again to follow a move).
 */
export async function allowSourceHost(admin: pg.ClientBase, allowHosts: string[], tenant: string, hostPort: string): Promise<SourceHostRow> {
  const { host, port } = parseHostPort(hostPort);
  const { address } = await resolveReachable(host, port, 5432, allowHosts);
  await admin.query("select sextant_private.allow_source_host($1, $2, $3, $4)", [tenant, host, port, address]);
  return (await listSourceHosts(admin, tenant)).find((h) => h.host === host && h.port === port)!;
}

/** Takes host:port off a tenant's allow list; sources already added stay until removed. */
export async function disallowSourceHost(admin: pg.ClientBase, tenant: string, hostPort: string): Promise<boolean> {
  const { host, port } = parseHostPort(hostPort);
  const { rows } = await admin.query("select sextant_private.disallow_source_host($1, $2, $3) as removed", [tenant, host, port]);
  return rows[0].removed as boolean;
}

/** The allow list, of one tenant or all. */
export async function listSourceHosts(admin: pg.ClientBase, tenant?: string): Promise<SourceHostRow[]> {
  const { rows } = await admin.query(
    `select tenant_slug as tenant, host, port, hostaddr as address, added_at from sextant_private.source_hosts
     where $1::text is null or tenant_slug = $1 order by tenant_slug, host, port`,
    [tenant ?? null],
  );
  return rows as SourceHostRow[];
}
