/**
 * The catalog rules that take their tenant or their operators from the caller (eb92739):
 * sextant_exec.dbt_marked_sensitive takes the tenant's slug as an argument, and
 * sextant_exec.is_internal_schema is inlined into the caller's statement, parsed with the
 * caller's search_path. A tenant's role names another tenant, and puts operators of its own
 * ahead of pg_catalog's: neither changes what it is shown.
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { describe, expect, test } from "vitest";
import { withTx } from "../helpers/db.ts";
import { useTestDatabase } from "../helpers/setup.ts";

const db = useTestDatabase();

async function asRole(c: pg.ClientBase, role: string) {
  await c.query(`select set_config('role', $1, true)`, [role]);
}

describe("catalog rules against a hostile caller", () => {
  test("dbt_marked_sensitive shows nothing of another tenant's dbt project, whatever slug it is given", () =>
    withTx(db.admin, async (c) => {
      const { rows: p } = await c.query(
        "insert into sextant.dbt_projects (tenant_slug, project_name) values ('globex', 'gx_secret_project') returning id");
      await c.query(
        `insert into sextant.dbt_nodes (project_id, tenant_slug, unique_id, name, resource_type, schema_name, alias, columns)
         values ($1, 'globex', 'model.gx.payroll', 'payroll', 'model', 'globex_hr', 'payroll',
                 '[{"name": "Salary", "meta": {"pii": true}}, {"name": "grade", "tags": ["pii"]}, {"name": "id"}]')`,
        [p[0].id]);
      const ask = "select * from sextant_exec.dbt_marked_sensitive('globex', '{pii}', $1, $2) order by name";
      // Globex's own role sees its marks (so the rows are there to be found).
      await asRole(c, "sextant_t_globex");
      const own = await c.query(ask, [null, null]);
      expect(own.rows).toEqual([
        { schema_name: "globex_hr", table_name: "payroll", name: "grade" },
        { schema_name: "globex_hr", table_name: "payroll", name: "salary" },
      ]);
      // Acme's roles, naming globex, of all tables or of that one: nothing.
      for (const role of ["sextant_t_acme", "sextant_t_acme__analyst", "sextant_t_acme__admin"]) {
        await asRole(c, role);
        expect((await c.query(ask, [null, null])).rows, role).toEqual([]);
        expect((await c.query(ask, ["globex_hr", "payroll"])).rows, role).toEqual([]);
      }
    }));

  test("is_internal_schema answers the same under a search_path with hostile = and ~~ ahead of pg_catalog", () =>
    withTx(db.admin, async (c) => {
      const s = `hostile_ops_${randomBytes(3).toString("hex")}`;
      // A schema whose = and ~~ on text always say true (a schema a tenant could create in,
      // at its worst: put ahead of pg_catalog by the caller's own search_path).
      await c.query(`create schema ${s}; grant usage on schema ${s} to public;
        create function ${s}.yes(text, text) returns boolean language sql immutable as 'select true';
        create operator ${s}.= (leftarg = text, rightarg = text, function = ${s}.yes);
        create operator ${s}.~~ (leftarg = text, rightarg = text, function = ${s}.yes);
        grant execute on function ${s}.yes(text, text) to public`);
      const ask = `select sextant_exec.is_internal_schema('acme_sales') as sales,
                          sextant_exec.is_internal_schema('sextant_private') as private,
                          (select array_agg(schema_name order by schema_name) from sextant.schemas) as schemas`;
      await asRole(c, "sextant_t_acme__admin");
      const plain = (await c.query(ask)).rows[0];
      expect(plain.sales).toBe(false);
      expect(plain.private).toBe(true);
      expect(plain.schemas).toContain("acme_sales");
      expect(plain.schemas).not.toContain("sextant");
      await c.query(`select set_config('search_path', '${s}, pg_catalog, public', true)`);
      // The hostile operators are the ones an unqualified = and ~~ now find.
      const { rows: hostile } = await c.query("select 'a'::text = 'b'::text as eq, 'a'::text ~~ 'b'::text as like");
      expect(hostile[0]).toEqual({ eq: true, like: true });
      expect((await c.query(ask)).rows[0]).toEqual(plain);
    }));

  test("a tenant's roles may create no schema in the database", async () => {
    const { rows } = await db.admin.query(
      `select r.rolname::text from pg_roles as r
        where r.rolname like 'sextant\\_t\\_acme%' and has_database_privilege(r.oid, current_database(), 'CREATE')`);
    expect(rows).toEqual([]);
  });
});
