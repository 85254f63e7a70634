import { spawnSync } from "node:child_process";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runCli, SEXTANT_BIN } from "./helpers/cli.ts";
import { PG15_MISSING, startPg15 } from "./helpers/pg15.ts";
import { startRemotePg } from "./helpers/remotePg.ts";

// `sextant uninstall` on a database holding the user's data (Pagila), in a PostgreSQL of its
// own: roles are cluster-wide, and the shared test server's other databases use Sextant's.
// Debian's PostgreSQL 15 when installed (CI), else a second embedded 18.
let cluster: { adminUrl: string; sql(text: string): Promise<unknown[]>; close(): Promise<void> };
let url: string;

/**
 * What must be the same before install and after uninstall: the catalog and the user's data.
 * An ACL that was never set (null) and the owner's default written out are the same privileges
 * (GRANT then REVOKE leaves the latter): compared through acldefault().
 */
async function snapshot(dbUrl = url): Promise<Record<string, unknown>> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const q = async (sql: string) => (await c.query(sql)).rows;
    return {
      schemas: await q("select nspname, pg_get_userbyid(nspowner) as owner, coalesce(nspacl, acldefault('n', nspowner))::text as acl from pg_namespace order by 1"),
      roles: await q("select rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolconfig from pg_roles order by 1"),
      memberships: await q("select pg_get_userbyid(roleid) as role, pg_get_userbyid(member) as member from pg_auth_members order by 1, 2"),
      functions: await q("select p.oid::regprocedure::text as f, coalesce(p.proacl, acldefault('f', p.proowner))::text as acl from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname not in ('pg_catalog', 'information_schema') order by 1"),
      extensions: await q("select extname, extversion, extnamespace::regnamespace::text as schema from pg_extension order by 1"),
      defaultPrivileges: await q("select pg_get_userbyid(defaclrole) as role, defaclnamespace, defaclobjtype, defaclacl::text from pg_default_acl order by 1, 2, 3"),
      databaseSettings: await q("select setrole, setconfig from pg_db_role_setting where setdatabase = (select oid from pg_database where datname = current_database()) order by 1"),
      databaseAcl: await q("select coalesce(datacl, acldefault('d', datdba))::text as acl from pg_database where datname = current_database()"),
      catalogAcls: await q("select c.relname, c.relacl::text, (select array_agg(attname || ':' || attacl::text order by attnum) from pg_attribute where attrelid = c.oid and attacl is not null) as cols from pg_class c where c.relnamespace = 'pg_catalog'::regnamespace order by 1"),
      relations: await q("select c.oid::regclass::text as rel, c.relkind, pg_get_userbyid(c.relowner) as owner, coalesce(c.relacl, acldefault((case c.relkind when 'S' then 's' else 'r' end)::\"char\", c.relowner))::text as acl from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') order by 1"),
      servers: await q("select srvname from pg_foreign_server order by 1"),
      eventTriggers: await q("select evtname from pg_event_trigger order by 1"),
      data: dbUrl !== url ? [] : await q(`select (select count(*) from public.film)::int as films, (select count(*) from public.rental)::int as rentals,
                            (select sum(amount)::text from public.payment) as paid, (select md5(string_agg(title, ',' order by film_id)) from public.film) as titles`),
    };
  } finally {
    await c.end();
  }
}

function psql(file: string): void {
  const r = spawnSync("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`psql -f ${file} failed: ${r.stderr}`);
}

beforeAll(async () => {
  cluster = PG15_MISSING ? await startRemotePg() : await startPg15();
  await cluster.sql("create database pagila");
  url = cluster.adminUrl.replace(/\/[^/?]+(\?|$)/, "/pagila$1");
  const pagila = path.resolve("test/fixtures/pagila");
  psql(path.join(pagila, "pagila-schema.sql"));
  psql(path.join(pagila, "pagila-data.sql"));
}, 180_000);

afterAll(() => cluster?.close());

describe("sextant uninstall", () => {
  test("removes every schema, role, function, extension, default privilege and setting Sextant created; the user's data stays", async () => {
    const before = await snapshot();
    const env = { DATABASE_URL: url };
    const steps: string[][] = [
      ["migrate"],
      ["tenant", "create", "rentals", "--schema", "public", "--schema", "rentals_work", "--table-owner", "postgres"],
      ["analyst", "create", "ana_rentals", "--tenant", "rentals"],
      ["token", "create", "--tenant", "rentals", "--name", "someone"],
    ];
    for (const args of steps) {
      const r = await runCli(args, { ...env, SEXTANT_ANALYST_PASSWORD: "analyst-password-0123456789" });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
    }
    const installed = await snapshot();
    expect(installed).not.toEqual(before); // the install did change the catalog
    expect(installed.data).toEqual(before.data);

    // Not confirmed: nothing happens.
    const no = spawnSync(process.execPath, [SEXTANT_BIN, "uninstall"], { input: "no\n", env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });
    expect(no.status).toBe(1);
    expect(no.stderr).toMatch(/This removes Sextant from database pagila:[\s\S]*rentals_work[\s\S]*nothing was removed \(not confirmed\)/);
    expect(no.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(await snapshot()).toEqual(installed);

    const yes = await runCli(["uninstall", "--yes"], env);
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stdout).toMatch(/Sextant removed from database pagila/);
    expect(await snapshot()).toEqual(before);

    const again = await runCli(["uninstall", "--yes"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^sextant: Sextant is not installed in this database\nhint: Check DATABASE_URL\.\n$/);
  }, 300_000);

  test("an admin with only CREATEROLE, CREATEDB and a database of its own installs, runs a tenant's query and uninstalls (managed PostgreSQL)", async () => {
    await cluster.sql("create role installer login createrole createdb password 'installer-password-0123456789'");
    await cluster.sql("create database managed owner installer");
    const admin = new URL(url.replace(/\/pagila(\?|$)/, "/managed$1"));
    const superUrl = admin.toString();
    admin.username = "installer";
    admin.password = "installer-password-0123456789";
    const env = { DATABASE_URL: admin.toString() };
    const c = new pg.Client({ connectionString: env.DATABASE_URL });
    await c.connect();
    await c.query("create table public.trips (id int primary key, km numeric); insert into trips values (1, 12.5)");
    await c.end();
    const before = await snapshot(superUrl);
    for (const args of [["migrate"], ["tenant", "create", "fleet", "--schema", "public"]]) {
      const r = await runCli(args, env);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
    }
    const q = await runCli(["psql", "--tenant", "fleet", "-At", "-c", "select rows::text || ' ' || columns::text from sextant.query('select * from trips')"], env);
    expect(q.stderr).toBe("");
    expect(q.stdout.trim()).toBe('[{"id":1,"km":12.5}] [{"name": "id", "type": "integer"}, {"name": "km", "type": "numeric"}]');
    const yes = await runCli(["uninstall", "--yes"], env);
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stderr).not.toMatch(/installer/);
    // The first test's install is gone, so no role is kept for another database here.
    expect(await snapshot(superUrl)).toEqual(before);
  }, 300_000);
});
