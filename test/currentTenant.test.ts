import { randomBytes } from "node:crypto";
import type pg from "pg";
import { describe, expect, test } from "vitest";
import { withTx } from "./helpers/db.ts";
import { useTestDatabase } from "./helpers/setup.ts";

// sextant.current_tenant() walks up from current_user through pg_auth_members (issue 14); it
// used to test every tenant role. The old body is kept here, created under a scratch name in a
// rolled-back transaction, and both are asked as every role of the cluster (SET ROLE to each)
// after adding the kinds of role that make the answer tricky.
const db = useTestDatabase();

const OLD_BODY = String.raw`
begin
  return (select case when count(*) = 1 then min(substr(pg_catalog.pg_get_userbyid(m.member), 11)) end
          from pg_catalog.pg_auth_members as m
          where m.roleid = 'sextant_tenant_reader'::regrole
            and pg_catalog.pg_get_userbyid(m.member) like 'sextant\_t\_%'
            and pg_catalog.pg_has_role(current_user, m.member, 'USAGE')
            and not exists (select from pg_catalog.pg_roles as s where s.rolname = current_user and s.rolsuper));
end
`;

async function bothAs(client: pg.ClientBase, role: string, schema: string) {
  await client.query(`select set_config('role', $1, true)`, [role]);
  const { rows } = await client.query(
    `select current_user::text as who, sextant.current_tenant() as new, ${schema}.current_tenant_before() as old`,
  );
  await client.query("reset role");
  return rows[0] as { who: string; new: string | null; old: string | null };
}

describe("current_tenant", () => {
  test("answers as the scan of every tenant role did, for every role of the cluster", () =>
    withTx(db.admin, async (c) => {
      const r = randomBytes(3).toString("hex");
      const s = `ct_scratch_${r}`;
      const { rows: ver } = await c.query("select current_setting('server_version_num')::int as v");
      const pg16 = ver[0].v >= 160000;
      await c.query(`create schema ${s}; grant usage on schema ${s} to public`);
      await c.query(`create function ${s}.current_tenant_before() returns text language plpgsql stable
                     set search_path = pg_catalog, pg_temp as $body$${OLD_BODY}$body$`);
      await c.query(`grant execute on function ${s}.current_tenant_before() to public`);
      // So that every role, not only tenant roles, may ask (rolled back with the rest).
      await c.query("grant usage on schema sextant to public; grant execute on function sextant.current_tenant() to public");

      // Two fresh tenants (viewer/analyst/admin/runner/builder roles), beside acme and globex.
      const t1 = `ctone${r}`;
      const t2 = `cttwo${r}`;
      await c.query("select sextant_private.create_tenant($1, 'x', '{}')", [t1]);
      await c.query("select sextant_private.create_tenant($1, 'x', '{}')", [t2]);
      // An analyst login, and one more role above it (two hops).
      await c.query("select sextant_private.create_analyst_login('acme', $1, 'correct-horse-battery-staple')", [`ct_alice_${r}`]);
      await c.query(`create role ct_above_alice_${r}; grant ct_alice_${r} to ct_above_alice_${r}`);
      // A login granted two tenants' roles: null.
      await c.query(`create role ct_both_${r} login; grant sextant_t_acme, sextant_t_globex to ct_both_${r}`);
      // The same tenant twice (a diamond): still acme.
      await c.query(`create role ct_diamond_${r}; grant sextant_t_acme__admin, sextant_t_acme to ct_diamond_${r}`);
      // A plain role, and NOINHERIT roles granted a tenant role (no USAGE without inheritance).
      await c.query(`create role ct_plain_${r}`);
      await c.query(`create role ct_noinherit_${r} noinherit; grant sextant_t_acme to ct_noinherit_${r}`);
      await c.query(`create role ct_noinherit_above_${r}; grant ct_noinherit_${r} to ct_noinherit_above_${r}`);
      if (pg16) {
        await c.query(`create role ct_grant_noinherit_${r}; grant sextant_t_globex to ct_grant_noinherit_${r} with inherit false`);
        await c.query(`grant sextant_t_acme to ct_grant_noinherit_${r}`);
        // A second pg_auth_members row for one tenant role (another grantor): the scan counted
        // rows, so that tenant's roles answered null; the walk must count the same.
        await c.query(`create role ct_grantor_${r}; grant sextant_tenant_reader to ct_grantor_${r} with admin option`);
        await c.query(`grant sextant_tenant_reader to sextant_t_${t2} granted by ct_grantor_${r}`);
      }
      // One tenant's analyst role granted another tenant's viewer role: null for it and above.
      await c.query(`grant sextant_t_globex to sextant_t_${t1}__analyst`);
      await c.query(`create role ct_super_${r} superuser`);
      // Roles in more than 64 roles take the other branch (the scan of every tenant role).
      await c.query(`create role ct_many_${r}; create role ct_many_two_${r}`);
      for (let i = 0; i < 70; i++) {
        await c.query(`create role ct_filler_${r}_${i}; grant ct_filler_${r}_${i} to ct_many_${r}, ct_many_two_${r}`);
      }
      await c.query(`grant sextant_t_acme__analyst to ct_many_${r}; grant sextant_t_acme, sextant_t_globex to ct_many_two_${r}`);
      await c.query(`create role ct_above_many_${r}; grant ct_many_${r} to ct_above_many_${r}`);

      // SECURITY DEFINER: current_user inside is the function's owner.
      for (const [name, owner] of [
        ["as_runner", "sextant_t_acme__runner"],
        ["as_owner", "sextant_owner"],
        ["as_plain", `ct_plain_${r}`],
      ]) {
        await c.query(`create function ${s}.${name}() returns table (who text, new text, old text) language sql
                       security definer set search_path = pg_catalog, pg_temp
                       as $q$ select current_user::text, sextant.current_tenant(), ${s}.current_tenant_before() $q$`);
        await c.query(`alter function ${s}.${name}() owner to ${owner}`);
        await c.query(`grant execute on function ${s}.${name}() to public`);
      }

      const everyRole = async () => {
        const { rows: roles } = await c.query<{ rolname: string }>("select rolname::text from pg_catalog.pg_roles order by 1");
        const answers = new Map<string, { who: string; new: string | null; old: string | null }>();
        for (const { rolname } of roles) answers.set(rolname, await bothAs(c, rolname, s));
        return { roles, answers };
      };
      // Up to 64 tenant roles the function scans them as before; past that it walks up from
      // current_user. Both are compared with the old body, before and after 65 more tenant roles.
      const few = await everyRole();
      expect([...few.answers].filter(([, a]) => a.new !== a.old || a.who === "")).toEqual([]);
      const { rows: readers } = await c.query("select count(*)::int as n from pg_auth_members where roleid = 'sextant_tenant_reader'::regrole");
      expect(readers[0].n).toBeLessThanOrEqual(64);
      for (let i = 0; i < 65; i++) await c.query(`create role sextant_t_ctfill${r}_${i}; grant sextant_tenant_reader to sextant_t_ctfill${r}_${i}`);
      const { roles, answers } = await everyRole();
      expect(answers.get(`sextant_t_ctfill${r}_7`)?.new).toBe(`ctfill${r}_7`);
      // The session's own role (the migrator, a superuser) without SET ROLE.
      const { rows: self } = await c.query(`select sextant.current_tenant() as new, ${s}.current_tenant_before() as old`);

      const differing = [...answers].filter(([, a]) => a.new !== a.old || a.who === "");
      expect(differing).toEqual([]);
      expect(self[0]).toEqual({ new: null, old: null });
      expect(roles.length).toBeGreaterThan(30);

      const expected: Record<string, string | null> = {
        sextant_t_acme: "acme",
        sextant_t_acme__analyst: "acme",
        sextant_t_acme__admin: "acme",
        sextant_t_acme__runner: "acme",
        sextant_t_acme__builder: "acme",
        sextant_t_globex: "globex",
        sextant_t_globex__admin: "globex",
        [`sextant_t_${t1}`]: t1,
        [`sextant_t_${t1}__runner`]: t1,
        [`sextant_t_${t1}__builder`]: t1,
        [`sextant_t_${t1}__analyst`]: null,
        [`sextant_t_${t1}__admin`]: null,
        [`ct_alice_${r}`]: "acme",
        [`ct_above_alice_${r}`]: "acme",
        [`ct_both_${r}`]: null,
        [`ct_diamond_${r}`]: "acme",
        [`ct_plain_${r}`]: null,
        [`ct_noinherit_${r}`]: null,
        [`ct_noinherit_above_${r}`]: null,
        [`ct_super_${r}`]: null,
        [`ct_many_${r}`]: "acme",
        [`ct_above_many_${r}`]: "acme",
        [`ct_many_two_${r}`]: null,
        sextant_authenticator: null,
        sextant_owner: null,
        sextant_tenant_reader: null,
        pg_read_all_data: null,
        ...(pg16
          ? { [`ct_grant_noinherit_${r}`]: "acme", [`sextant_t_${t2}`]: null, [`sextant_t_${t2}__admin`]: null, [`ct_grantor_${r}`]: null }
          : { [`sextant_t_${t2}`]: t2, [`sextant_t_${t2}__admin`]: t2 }),
      };
      const got = Object.fromEntries(Object.keys(expected).map((k) => [k, answers.get(k)?.new]));
      expect(got).toEqual(expected);
      for (const k of Object.keys(expected)) expect(answers.get(k)?.who).toBe(k);

      // Reached inside SECURITY DEFINER functions, called as a plain role and as a tenant role.
      for (const caller of [`ct_plain_${r}`, "sextant_t_globex"]) {
        await c.query(`select set_config('role', $1, true)`, [caller]);
        const runner = await c.query(`select * from ${s}.as_runner()`);
        const owner = await c.query(`select * from ${s}.as_owner()`);
        const plain = await c.query(`select * from ${s}.as_plain()`);
        await c.query("reset role");
        expect(runner.rows).toEqual([{ who: "sextant_t_acme__runner", new: "acme", old: "acme" }]);
        expect(owner.rows).toEqual([{ who: "sextant_owner", new: null, old: null }]);
        expect(plain.rows).toEqual([{ who: `ct_plain_${r}`, new: null, old: null }]);
      }
    }));

  test("the server's path: the authenticator switching into a tenant role", () =>
    withTx(db.auth, async (c) => {
      for (const [role, slug] of [
        ["sextant_t_acme", "acme"],
        ["sextant_t_globex__analyst", "globex"],
        ["sextant_t_acme__admin", "acme"],
      ]) {
        await c.query(`select set_config('role', $1, true)`, [role]);
        const { rows } = await c.query("select sextant.current_tenant() as t");
        expect(rows[0].t).toBe(slug);
        await c.query("reset role");
      }
      const { rows } = await c.query("select current_user::text as who, sextant.current_tenant() as t");
      expect(rows[0]).toEqual({ who: "sextant_authenticator", t: null });
    }));
});
