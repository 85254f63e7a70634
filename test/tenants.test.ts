import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { asRole, withTx } from "./helpers/db.ts";
import { useTestDatabase } from "./helpers/setup.ts";

const db = useTestDatabase();

describe("tenant roles", () => {
  test("a tenant's reader role reads its own schema and nothing of another tenant's", () =>
    withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      const { rows } = await client.query("select count(*)::int as n from acme_sales.orders");
      expect(rows[0].n).toBe(50);
      await expect(client.query("select * from globex_ops.shipments")).rejects.toMatchObject({ code: "42501" });
    }));

  test("the authenticator alone reads no tenant data (NOINHERIT)", async () => {
    await expect(db.auth.query("select * from acme_sales.orders")).rejects.toMatchObject({ code: "42501" });
    await expect(db.auth.query("select * from sextant_private.api_tokens")).rejects.toMatchObject({ code: "42501" });
  });

  test("current_tenant and current_access_level come from the role", () =>
    withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_globex__admin");
      const { rows } = await client.query(
        "select sextant.current_tenant() as t, sextant.current_access_level() as l",
      );
      expect(rows[0]).toEqual({ t: "globex", l: "admin" });
    }));

  test("spoofing jwt.claims settings does not change the tenant", () =>
    withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      await client.query("select set_config('jwt.claims.tenant', 'globex', true), set_config('jwt.claims.sub', 'globex-admin', true)");
      const { rows } = await client.query("select tenant, principal from sextant.whoami()");
      expect(rows[0]).toEqual({ tenant: "acme", principal: "globex-admin" });
      const { rows: schemas } = await client.query("select schema_name from sextant.list_schemas()");
      expect(schemas.map((r) => r.schema_name)).toEqual(["acme_sales"]);
    }));

  test("RLS shows a tenant only its own tenant row, schemas and principals", () =>
    withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      const tenants = await client.query("select slug from sextant.tenants");
      expect(tenants.rows).toEqual([{ slug: "acme" }]);
      const schemas = await client.query("select schema_name from sextant.tenant_schemas");
      expect(schemas.rows).toEqual([{ schema_name: "acme_sales" }]);
    }));

  test("a tenant role cannot write its own tables or Sextant's", () =>
    withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme__admin");
      await client.query("savepoint s");
      await expect(client.query("insert into acme_sales.orders values (999, 'x', 1)")).rejects.toMatchObject({ code: "42501" });
      await client.query("rollback to savepoint s");
      await expect(client.query("update sextant.tenants set max_rows = 100000")).rejects.toMatchObject({ code: "42501" });
      await client.query("rollback to savepoint s");
      await expect(client.query("create table acme_sales.evil (id int)")).rejects.toMatchObject({ code: "42501" });
    }));
});

describe("create_tenant", () => {
  test("creates roles and maps existing schemas, creating missing ones", () =>
    withTx(db.admin, async (client) => {
      await client.query("create schema reporting_x; create table reporting_x.kpis (k text)");
      const { rows } = await client.query(
        "select * from sextant_private.create_tenant('initech', 'Initech', array['reporting_x', 'initech_new'])",
      );
      expect(rows[0].reader_role).toBe("sextant_t_initech");
      const { rows: mapped } = await client.query(
        "select schema_name, provisioned from sextant.tenant_schemas where tenant_slug = 'initech' order by 1",
      );
      expect(mapped).toEqual([
        { schema_name: "initech_new", provisioned: true },
        { schema_name: "reporting_x", provisioned: false },
      ]);
      await asRole(client, "sextant_t_initech");
      const { rows: kpis } = await client.query("select count(*)::int as n from reporting_x.kpis");
      expect(kpis[0].n).toBe(0);
    }));

  test.each([
    ["Bad-Slug", "SX400"],
    ["a; drop table sextant.tenants", "SX400"],
    ["acme", "SX409"],
    ["x__admin", "SX400"],
    ["", "SX400"],
  ])("refuses slug %j with %s", (slug, code) =>
    withTx(db.admin, async (client) => {
      await expect(client.query("select sextant_private.create_tenant($1, 'x', '{}')", [slug])).rejects.toMatchObject({ code });
    }));

  test.each([
    ["sextant_private", "SX400"],
    ["pg_catalog", "SX400"],
    ["sextant_exec", "SX400"], // public may be mapped now (test/external.test.ts)
    ["globex_ops", "SX409"],
    ['x"; drop schema sextant cascade; --', "SX400"],
    ["Upper", "SX400"],
  ])("refuses schema %j with %s", (schema, code) =>
    withTx(db.admin, async (client) => {
      await expect(
        client.query("select sextant_private.create_tenant('newco', 'x', array[$1])", [schema]),
      ).rejects.toMatchObject({ code });
    }));
});

describe("map_schema grants reading, nothing that writes", () => {
  test("a mapped schema's sequences are readable but cannot be advanced, and PUBLIC loses CREATE on it", () =>
    withTx(db.admin, async (client) => {
      await client.query("create schema legacy_reports; grant create on schema legacy_reports to public");
      await client.query("create sequence legacy_reports.ids");
      await client.query("select sextant_private.map_schema('acme', 'legacy_reports')");
      const { rows } = await client.query(
        `select has_sequence_privilege('sextant_t_acme', 'legacy_reports.ids', 'select') as can_read,
                has_sequence_privilege('sextant_t_acme', 'legacy_reports.ids', 'usage') as can_nextval,
                has_schema_privilege('sextant_t_acme', 'legacy_reports', 'create') as tenant_creates,
                has_schema_privilege('public', 'legacy_reports', 'create') as public_creates`,
      );
      expect(rows[0]).toEqual({ can_read: true, can_nextval: false, tenant_creates: false, public_creates: false });
    }));
});

describe("analyst psql logins", () => {
  let url: string;
  beforeAll(async () => {
    await db.admin.query("select sextant_private.create_analyst_login('acme', 'alice_acme', 'correct-horse-battery-staple')");
    const u = new URL(db.adminUrl);
    u.username = "alice_acme";
    u.password = "correct-horse-battery-staple";
    url = u.toString();
  });
  afterAll(async () => {
    // Login roles are cluster-wide; leave none behind for other files.
    await db.admin.query("drop owned by alice_acme; drop role if exists alice_acme").catch(() => {});
  });

  test("an analyst logs in read-only and sees only its tenant", async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const { rows } = await c.query(
        "select current_setting('transaction_read_only') as ro, sextant.current_tenant() as t, count(*)::int as n from acme_sales.orders",
      );
      expect(rows[0]).toEqual({ ro: "on", t: "acme", n: 50 });
      await expect(c.query("select * from globex_ops.shipments")).rejects.toMatchObject({ code: "42501" });
      // Even after leaving read-only mode, privileges keep the login read-only.
      await c.query("set default_transaction_read_only = off");
      await expect(c.query("delete from acme_sales.orders")).rejects.toMatchObject({ code: "42501" });
    } finally {
      await c.end();
    }
  });

  test("an analyst cannot switch to another tenant's role", async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await expect(c.query("set role sextant_t_globex")).rejects.toMatchObject({ code: "42501" });
      await expect(c.query("select set_config('role', 'sextant_t_globex', false)")).rejects.toMatchObject({ code: "42501" });
      await expect(c.query("set role sextant_authenticator")).rejects.toMatchObject({ code: "42501" });
    } finally {
      await c.end();
    }
  });

  test("refuses reserved login names", async () => {
    await expect(
      db.admin.query("select sextant_private.create_analyst_login('acme', 'sextant_owner2', 'correct-horse-battery-staple')"),
    ).rejects.toMatchObject({ code: "SX400" });
    await expect(
      db.admin.query("select sextant_private.create_analyst_login('nope', 'bob', 'correct-horse-battery-staple')"),
    ).rejects.toMatchObject({ code: "SX404" });
  });
});
