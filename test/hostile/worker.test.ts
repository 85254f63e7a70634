import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { workerUrl } from "../../src/db/migrate.ts";
import { connectBuilder } from "../../src/worker/materialize.ts";
import { SEXTANT_BIN } from "../helpers/cli.ts";
import { useTestDatabase } from "../helpers/setup.ts";

// The pipeline worker's sessions, attacked from the inside: whatever SQL an injection manages
// to run there (issue 13: a source's type name pasted into DDL ran `set local role postgres`
// and `copy ... to program`), it must not become a superuser, run programs, read server files
// or reach another tenant. Both sessions are opened exactly as the worker opens them.

const db = useTestDatabase();
let worker: pg.Client;
let builder: pg.Client;
const marker = path.join(os.tmpdir(), `sextant-worker-pwned-${process.pid}`);

beforeAll(async () => {
  worker = new pg.Client({ connectionString: await workerUrl(db.adminUrl) });
  await worker.connect();
  const { rows } = await db.admin.query("select value from sextant_private.settings where key = 'builder_password:acme'");
  builder = await connectBuilder(await workerUrl(db.adminUrl), "sextant_t_acme__builder", rows[0].value);
});
afterAll(async () => {
  await worker?.end();
  await builder?.end();
  fs.rmSync(marker, { force: true });
});

/** What an escape would change, read from the admin connection. */
async function snapshot() {
  return (await db.admin.query(`
    select (select count(*) from globex_ops.shipments)::int as shipments,
           (select count(*) from acme_sales.orders)::int as orders,
           (select count(*) from pg_roles where rolsuper)::int as superusers,
           (select count(*) from pg_class where relname = 'sx_pwned')::int as pwned`)).rows[0];
}

/** Expects `sql` to fail with `code` in the session and leave it usable. */
async function refused(client: pg.Client, sql: string, code: string | RegExp) {
  await client.query("begin");
  try {
    const error = await client.query(sql).then(() => null, (e: { code?: string }) => e);
    expect(error, sql).not.toBeNull();
    if (typeof code === "string") expect(error!.code, sql).toBe(code);
    else expect(error!.code, sql).toMatch(code);
  } finally {
    await client.query("rollback");
  }
  expect((await client.query("select current_user as u")).rows[0].u).not.toBe("postgres");
}

/** `refused`, and the escape changed nothing and wrote no file. */
async function refusedWithoutTrace(session: pg.Client, sql: string, code: string | RegExp): Promise<void> {
  const before = await snapshot();
  await refused(session, sql, code);
  expect(await snapshot()).toEqual(before);
  expect(fs.existsSync(marker)).toBe(false);
}

const ESCAPES: [string, string, string | RegExp][] = [
  ["become the superuser", "set role postgres", "42501"],
  ["become the superuser for the transaction", "set local role postgres", "42501"],
  ["become the superuser through set_config", "select set_config('role', 'postgres', true)", "42501"],
  ["become the installing role by session authorization", "set session authorization postgres", "42501"],
  ["run a program on the server", "copy (select 1) to program 'true'", "42501"],
  ["run a program that leaves a mark", `copy (select 1) to program 'touch ${marker}'`, "42501"],
  ["write a server file", `copy (select 1) to '${marker}'`, "42501"],
  ["read a server file", "select pg_read_file('/etc/passwd')", "42501"],
  ["read a server file as binary", "select pg_read_binary_file('/etc/passwd')", "42501"],
  ["copy from a server file", "create temp table sx_f (l text); copy sx_f from '/etc/passwd'", "42501"],
  ["list the server's directories", "select pg_ls_dir('/')", "42501"],
  ["become pg_read_server_files", "set role pg_read_server_files", "42501"],
  ["become pg_execute_server_program", "set role pg_execute_server_program", "42501"],
  ["read another tenant's table", "select * from globex_ops.shipments", "42501"],
  ["become another tenant's builder", "set role sextant_t_globex__builder", "42501"],
  ["become another tenant's reader", "set role sextant_t_globex", "42501"],
  ["create a role", "create role sx_pwned superuser", "42501"],
  ["load an untrusted language function", "create function sx_pwned() returns int language c as '/bin/sh', 'main'", /^(42501|42P13)$/],
  ["read the secret key", "select value from sextant_private.settings", "42501"],
];

describe("the worker's own session (sextant_worker, its own login)", () => {
  test("is a login of its own that is not superuser, creates no roles or databases and belongs to no role", async () => {
    const { rows } = await worker.query(`
      select current_user as u, session_user as s, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolinherit,
             (select coalesce(array_agg(m.roleid::regrole::text), '{}') from pg_auth_members m where m.member = r.oid) as member_of
      from pg_roles r where r.rolname = current_user`);
    expect(rows[0]).toEqual({ u: "sextant_worker", s: "sextant_worker", rolsuper: false, rolcreaterole: false, rolcreatedb: false,
      rolbypassrls: false, rolinherit: false, member_of: [] });
  });

  test.each(ESCAPES)("cannot %s", (_, sql, code) => refusedWithoutTrace(worker, sql, code));

  test("still does its job: the queue, the scheduler and the builders' functions", async () => {
    await worker.query("select count(*) from graphile_worker.jobs");
    await worker.query("select sextant_private.scheduler_tick(now())");
    const { rows } = await worker.query("select has_function_privilege('sextant_exec.build_model__acme(text, text, text, text, integer)', 'execute') as ok");
    expect(rows[0].ok).toBe(true);
  });
});

describe("the builder session the worker loads a tenant's data in (sextant_t_acme__builder)", () => {
  test("has only its tenant's rights", async () => {
    const { rows } = await builder.query("select current_user as u, sextant.current_tenant() as t, (select rolsuper from pg_roles where rolname = current_user) as su");
    expect(rows[0]).toEqual({ u: "sextant_t_acme__builder", t: "acme", su: false });
    expect((await builder.query("select count(*)::int as n from acme_sales.orders")).rows[0].n).toBe(50);
  });

  test.each(ESCAPES)("cannot %s", (_, sql, code) => refusedWithoutTrace(builder, sql, code));

  test("cannot claim runs (which hand out every tenant's secrets) or finish another tenant's run", async () => {
    await refused(builder, "select sextant_private.claim_run(1, 'x', 1)", "42501");
    const { rows } = await db.admin.query(`
      insert into sextant.materialization_runs (pipeline_id, tenant_slug, status, trigger)
      select p.id, p.tenant_slug, 'running', 'manual' from sextant.pipelines p where p.tenant_slug = 'globex' limit 1
      returning id`).catch(() => ({ rows: [] as { id: number }[] }));
    const runId = rows[0]?.id ?? 0;
    await refused(builder, `select sextant_exec.finish_build(${runId}, 'w', 1, '[{"schema": "sextant_private", "table": "settings"}]')`, "SX403");
  });
});

describe("`sextant worker`", () => {
  test("connects as sextant_worker and keeps no admin connection open while it runs", { timeout: 120_000 }, async () => {
    const watch = new pg.Client({ connectionString: db.adminUrl });
    await watch.connect();
    const sessions = async () => (await watch.query<{ usename: string; pid: number }>(
      "select usename, pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'")).rows;
    const before = new Set((await sessions()).map((r) => r.pid));
    const child = spawn(process.execPath, [SEXTANT_BIN, "worker"], {
      env: { ...process.env, DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    try {
      const until = Date.now() + 90_000;
      while (!stderr.includes("sextant worker running")) {
        if (Date.now() > until || child.exitCode !== null) throw new Error(`the worker did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 500));
      const now = (await sessions()).filter((r) => !before.has(r.pid));
      expect(now.length).toBeGreaterThan(0);
      expect([...new Set(now.map((r) => r.usename))]).toEqual(["sextant_worker"]);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await watch.end();
    }
  });
});

describe("a tenant created after installation", () => {
  test("gets a builder login the worker can use, with that tenant's rights only", async () => {
    const slug = `w${Math.random().toString(36).slice(2, 8)}`;
    await db.admin.query("select sextant_private.create_tenant($1, $2, '{}')", [slug, "Late tenant"]);
    const { rows } = await db.admin.query("select value from sextant_private.settings where key = $1", [`builder_password:${slug}`]);
    const late = await connectBuilder(await workerUrl(db.adminUrl), `sextant_t_${slug}__builder`, rows[0].value);
    try {
      expect((await late.query("select sextant.current_tenant() as t")).rows[0].t).toBe(slug);
      await refused(late, "select * from acme_sales.orders", "42501");
      await refused(late, "set role postgres", "42501");
    } finally {
      await late.end();
    }
  });
});

describe("SECURITY DEFINER functions", () => {
  test("none is owned by a superuser, or by a role that is a member of one or of the server-file roles", async () => {
    const { rows } = await db.admin.query(`
      select p.oid::regprocedure::text as fn, o.rolname as owner
      from pg_proc p join pg_roles o on o.oid = p.proowner
      where p.prosecdef
        and (o.rolsuper or o.rolcreaterole or o.rolbypassrls
             or exists (select from pg_roles s where (s.rolsuper or s.rolname in ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'))
                          and s.oid <> o.oid and pg_has_role(o.oid, s.oid, 'member')))`);
    expect(rows).toEqual([]);
  });

  test("there are some (the check above looks at the real ones)", async () => {
    const { rows } = await db.admin.query("select count(*)::int as n from pg_proc where prosecdef and pronamespace::regnamespace::text like 'sextant%'");
    expect(rows[0].n).toBeGreaterThan(10);
  });
});
