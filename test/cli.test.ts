import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runCli, SEXTANT_BIN } from "./helpers/cli.ts";
import { useTestDatabase } from "./helpers/setup.ts";

const db = useTestDatabase();
let env: Record<string, string>;
beforeAll(() => {
  env = { DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn" };
});
afterAll(async () => {
  await db.admin.query("drop owned by bob_cli; drop role if exists bob_cli").catch(() => {});
});

describe("sextant CLI", () => {
  test("--help lists every command", async () => {
    const { code, stdout } = await runCli(["--help"], env);
    expect(code).toBe(0);
    for (const cmd of ["serve", "mcp", "migrate", "tenant", "token", "analyst", "psql", "db-url"]) expect(stdout).toContain(cmd);
    const sub = await runCli(["token", "create", "--help"], env);
    expect(sub.stdout).toContain("--expires");
  });

  test("tenant create maps and creates schemas; tenant list shows them", async () => {
    await db.admin.query("create schema if not exists cli_existing");
    const created = await runCli(["tenant", "create", "clico", "--schema", "cli_existing", "--schema", "cli_fresh"], env);
    expect(created).toMatchObject({ code: 0 });
    expect(created.stdout).toContain("tenant clico created");
    const list = await runCli(["tenant", "list"], env);
    expect(list.stdout).toMatch(/clico\s+clico\s+500\s+15000\s+cli_existing, cli_fresh/);
  });

  test("token create prints only the token; list shows its prefix; revoke ends it", async () => {
    const created = await runCli(["token", "create", "--tenant", "acme", "--name", "cli-person", "--role", "analyst", "--expires", "30d"], env);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^sxt_[0-9a-f]{8}_[0-9a-f]{64}\n$/);
    const token = created.stdout.trim();
    const prefix = token.slice(4, 12);
    const list = await runCli(["token", "list", "--tenant", "acme"], env);
    expect(list.stdout).toContain(prefix);
    expect(list.stdout).not.toContain(token.slice(13));
    expect(list.stdout).toMatch(new RegExp(`cli-person\\s+${prefix}\\s+analyst\\s+active`));
    const revoked = await runCli(["token", "revoke", prefix], env);
    expect(revoked.stdout).toContain(`revoked token ${prefix}`);
    const { rowCount } = await db.auth.query("select * from sextant_private.authenticate_token($1)", [token]);
    expect(rowCount).toBe(0);
  });

  test("analyst create prints a working read-only connection string", async () => {
    const { code, stdout } = await runCli(["analyst", "create", "--tenant", "globex", "bob_cli"], env);
    expect(code).toBe(0);
    const c = new pg.Client({ connectionString: stdout.trim() });
    await c.connect();
    const { rows } = await c.query("select current_user as u, sextant.current_tenant() as t, count(*)::int as n from globex_ops.shipments");
    expect(rows[0]).toEqual({ u: "bob_cli", t: "globex", n: 20 });
    await expect(c.query("select * from acme_sales.orders")).rejects.toMatchObject({ code: "42501" });
    await c.end();
  });

  test("db-url prints the authenticator URL, --admin the admin one", async () => {
    expect((await runCli(["db-url"], env)).stdout).toMatch(/^postgres(ql)?:\/\/sextant_authenticator:/);
    expect((await runCli(["db-url", "--admin"], env)).stdout.trim()).toBe(db.adminUrl);
  });

  test.each([
    [["tenant", "create", "Bad Slug"], /tenant slug Bad Slug is invalid/],
    [["token", "create", "--tenant", "nosuch", "--name", "x"], /tenant nosuch does not exist/],
    [["token", "create", "--tenant", "acme", "--name", "x", "--expires", "soon"], /use a number and a unit/],
    [["token", "create", "--tenant", "acme", "--name", "x", "--role", "root"], /Allowed choices are viewer, analyst, admin/],
    [["token", "revoke", "nope"], /no token has id or prefix nope/],
    [["frobnicate"], /unknown command/],
  ])("bad input %j fails with a clear message and no stack", async (args, message) => {
    const { code, stderr, stdout } = await runCli(args, env);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(message);
    expect(stderr + stdout).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  test.each([["not a url"], ["ftp://embeddings.example"]])("a bad SEXTANT_EMBEDDINGS_URL (%s) is one line, exit 1", async (url) => {
    const { code, stderr } = await runCli(["dbt", "load", "--tenant", "acme", "/nonexistent"], { ...env, SEXTANT_EMBEDDINGS_URL: url });
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`sextant: SEXTANT_EMBEDDINGS_URL must be an http(s) URL, got "${url}"`);
  });
});

describe("sextant tenant update", () => {
  test("changes limits and filters, and reports what its filters hide", async () => {
    const r = await runCli(["tenant", "update", "acme", "--max-rows", "50", "--exclude", "acme_sales.ord%"], env);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("tenant acme updated (1 tables hidden by its filters)");
    const { rows } = await db.admin.query("select max_rows, excluded_tables from sextant.tenants where slug = 'acme'");
    expect(rows[0]).toEqual({ max_rows: 50, excluded_tables: ["acme_sales.ord%"] });
    const bad = await runCli(["tenant", "update", "nosuch", "--max-rows", "5"], env);
    expect(bad.stderr).toMatch(/tenant nosuch does not exist/);
    await runCli(["tenant", "update", "acme", "--max-rows", "500", "--exclude", "none.none"], env);
  });

  test("refuses a sensitive-column pattern PostgreSQL cannot compile, and keeps the old list", async () => {
    const before = (await db.admin.query("select sensitive_column_patterns as p from sextant.tenants where slug = 'acme'")).rows[0].p;
    const r = await runCli(["tenant", "update", "acme", "--sensitive", "email", "--sensitive", "(["], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sextant: --sensitive "\(\[" is not a valid regular expression: invalid regular expression/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const after = (await db.admin.query("select sensitive_column_patterns as p from sextant.tenants where slug = 'acme'")).rows[0].p;
    expect(after).toEqual(before);
  });
});

describe("sextant psql", () => {
  test("a stored pattern that does not compile (written before migration 000121) is named, and --sensitive replaces it", async () => {
    const before = (await db.admin.query("select sensitive_column_patterns as p, max_rows from sextant.tenants where slug = 'acme'")).rows[0];
    // As a row from before the constraint: stored by raw SQL with the constraint away, then back NOT VALID.
    await db.admin.query(`alter table sextant.tenants drop constraint tenants_sensitive_column_patterns_compile;
      update sextant.tenants set sensitive_column_patterns = array['email', '(['] where slug = 'acme';
      alter table sextant.tenants add constraint tenants_sensitive_column_patterns_compile
        check (sextant_private.patterns_compile(sensitive_column_patterns)) not valid;`);
    const validated = async () =>
      (await db.admin.query("select convalidated as v from pg_constraint where conrelid = 'sextant.tenants'::regclass and conname = 'tenants_sensitive_column_patterns_compile'")).rows[0].v;
    try {
      // `sextant migrate` names the tenant, and leaves the constraint NOT VALID while a row fails it.
      const migrated = await runCli(["migrate"], env);
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(migrated.stderr).toContain("tenant acme's stored sensitive-column patterns include one PostgreSQL cannot compile");
      expect(migrated.stderr).toContain("sextant tenant update acme --sensitive <regex>");
      expect(migrated.stderr.match(/tenant acme's stored/g)).toHaveLength(1);
      expect(await validated()).toBe(false);
      const r = await runCli(["tenant", "update", "acme", "--max-rows", "300"], env);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/^sextant: tenant acme's stored sensitive-column patterns include one PostgreSQL cannot compile/);
      expect(r.stderr).toContain("--sensitive <regex>");
      expect(r.stderr).not.toMatch(/at .*\.(ts|js|mjs):\d+/);
      const fixed = await runCli(["tenant", "update", "acme", "--sensitive", "email", "--max-rows", "300"], env);
      expect(fixed.code, fixed.stderr).toBe(0);
      expect((await db.admin.query("select sensitive_column_patterns as p, max_rows from sextant.tenants where slug = 'acme'")).rows[0])
        .toEqual({ p: ["email"], max_rows: 300 });
      // Once no row fails it, the next migrate validates it: PostgreSQL then holds it for every row, and nothing is named.
      const again = await runCli(["migrate"], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toContain("cannot compile");
      expect(await validated()).toBe(true);
    } finally {
      await db.admin.query("update sextant.tenants set sensitive_column_patterns = $1, max_rows = $2 where slug = 'acme'", [before.p, before.max_rows]);
    }
  });

  test("opens psql as the tenant's read-only role", async () => {
    const { spawnSync } = await import("node:child_process");
    const r = spawnSync(process.execPath, [SEXTANT_BIN, "psql", "--tenant", "globex"], {
      env: { ...process.env, ...env },
      input: "select current_user as u, sextant.current_tenant() as t, current_setting('transaction_read_only') as ro;\n",
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sextant_t_globex \| globex +\| on/);
  });
});
