import { createHash } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { asRole, createTestDatabase, withTx, type TestDatabase } from "../helpers/db.ts";

// The console's SQL (sql/console.sql), straight at the SQL door: sessions as the authenticator,
// tokens and history as tenant roles, and the attempts to cross over.
let db: TestDatabase;
let userId: number;
const hash = (s: string) => createHash("sha256").update(s).digest();

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.query("select * from sextant_private.upsert_user('sam@acme.test', null, 'Sam', 'acme', 'viewer')");
  userId = (await db.admin.query("select id from sextant_private.users where email = 'sam@acme.test'")).rows[0].id;
});
afterAll(() => db?.drop());

test("a session is found by its cookie hash, picks only a tenant of the person, and ends", async () => {
  await db.auth.query("select sextant_private.console_session_start($1, $2, 'c1')", [hash("s1"), userId]);
  const get = async (h: Buffer, idle = 1800, max = 43200) =>
    (await db.auth.query("select * from sextant_private.console_session_get($1, $2, $3)", [h, idle, max])).rows[0];
  expect(await get(hash("s1"))).toMatchObject({ email: "sam@acme.test", tenant: null, csrf: "c1" });
  expect(await get(hash("nope"))).toBeUndefined();
  await expect(db.auth.query("select sextant_private.console_session_pick($1, 'globex')", [hash("s1")])).rejects.toMatchObject({ code: "SX403" });
  const level = (await db.auth.query("select sextant_private.console_session_pick($1, 'acme') as l", [hash("s1")])).rows[0].l;
  expect(level).toBe("viewer");
  expect(await get(hash("s1"))).toMatchObject({ tenant: "acme", access_level: "viewer" });
  // Demoted out of the tenant: the session keeps the tenant but no level.
  await db.admin.query("delete from sextant_private.user_tenants where user_id = $1", [userId]);
  expect(await get(hash("s1"))).toMatchObject({ tenant: "acme", access_level: null });
  await db.admin.query("select * from sextant_private.upsert_user('sam@acme.test', null, null, 'acme', 'viewer')");
  // Idle and absolute limits.
  await db.admin.query("update sextant_private.console_sessions set last_seen_at = now() - interval '10 minutes' where id_hash = $1", [hash("s1")]);
  expect(await get(hash("s1"), 300)).toBeUndefined();
  expect(await get(hash("s1"), 1800, 60)).toBeDefined();
  await db.admin.query("update sextant_private.console_sessions set created_at = now() - interval '2 hours' where id_hash = $1", [hash("s1")]);
  expect(await get(hash("s1"), 1800, 3600)).toBeUndefined();
  await db.auth.query("select sextant_private.console_session_end($1)", [hash("s1")]);
  expect(await get(hash("s1"))).toBeUndefined();
});

test("the authenticator cannot read the sessions table; tenant roles cannot call the session functions", async () => {
  await expect(db.auth.query("select * from sextant_private.console_sessions")).rejects.toMatchObject({ code: "42501" });
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__admin");
    await expect(c.query("select * from sextant_private.console_session_get('\\x00', 1, 1)")).rejects.toMatchObject({ code: "42501" });
  });
});

test("a tenant admin creates, lists and revokes their tenant's tokens; a viewer and another tenant cannot", async () => {
  const token = await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__admin");
    const t = (await c.query("select sextant.create_api_token('robot', 'analyst', 30) as t")).rows[0].t as string;
    await c.query("commit");
    return t;
  });
  expect(token).toMatch(/^sxt_[0-9a-f]{8}_[0-9a-f]{64}$/);
  const prefix = token.slice(4, 12);
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__admin");
    const { rows } = await c.query("select * from sextant.list_api_tokens()");
    expect(rows.find((r) => r.prefix === prefix)).toMatchObject({ principal_name: "robot", access_level: "analyst", status: "active" });
    expect(JSON.stringify(rows)).not.toContain(token.slice(13));
  });
  for (const role of ["sextant_t_acme", "sextant_t_acme__analyst"]) {
    await withTx(db.auth, async (c) => {
      await asRole(c, role);
      await expect(c.query("select sextant.create_api_token('x')")).rejects.toMatchObject({ code: "SX403" });
      await c.query("rollback; begin");
      await asRole(c, role);
      await expect(c.query("select * from sextant.revoke_api_token($1)", [prefix])).rejects.toMatchObject({ code: "SX403" });
    });
  }
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_globex__admin");
    expect((await c.query("select * from sextant.list_api_tokens()")).rows.map((r) => r.prefix)).not.toContain(prefix);
    await expect(c.query("select * from sextant.revoke_api_token($1)", [prefix])).rejects.toMatchObject({ code: "SX404" });
  });
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__admin");
    expect((await c.query("select * from sextant.revoke_api_token($1)", [prefix])).rows[0]).toMatchObject({ status: "revoked" });
  });
});

test("a person's history holds their own events only, even for an admin", async () => {
  await db.admin.query(`insert into sextant.audit_events (tenant_slug, principal, tool, sql, outcome) values
    ('acme', 'sam@acme.test', 'query', 'select 1', 'ok'), ('acme', 'kim@acme.test', 'query', 'select 2', 'ok'),
    ('globex', 'sam@acme.test', 'query', 'select 3', 'ok')`);
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme");
    await c.query("select set_config('jwt.claims.sub', 'sam@acme.test', true)");
    expect((await c.query("select sql from sextant.my_query_history()")).rows.map((r) => r.sql)).toEqual(["select 1"]);
    // The policy alone (not only the function's filter) keeps others' events out.
    expect((await c.query("select sql from sextant.audit_events")).rows.map((r) => r.sql)).toEqual(["select 1"]);
  });
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__admin");
    await c.query("select set_config('jwt.claims.sub', 'kim@acme.test', true)");
    expect((await c.query("select sql from sextant.my_query_history()")).rows.map((r) => r.sql)).toEqual(["select 2"]);
  });
});

test("the Admin page's views: rate-limit use, people and provisioned schemas of the caller's tenant only; viewers refused", async () => {
  const epoch = Math.floor(Date.now() / 1000);
  const at = (seconds: number) => new Date(Math.floor(epoch / seconds) * seconds * 1000).toISOString();
  // The rate limiter's own buckets (src/audit/rateLimiter.ts names them): a name holding _ and %
  // and colons, another tenant's person, an old window, and a tenant whose slug starts like acme's.
  await db.admin.query(`insert into sextant_private.rate_buckets (bucket, window_start, hits) values
    ('t:acme:day', $1, 40), ('p:acme:kim@acme.test:hour', $2, 12), ('p:acme:kim@acme.test:minute', $3, 3),
    ('p:acme:a_b%c:d:hour', $2, 5), ('p:acme:kim@acme.test:hour', $2::timestamptz - interval '1 hour', 99),
    ('p:globex:gil@globex.test:hour', $2, 7), ('t:globex:day', $1, 70)
    on conflict (bucket, window_start) do update set hits = excluded.hits`, [at(86400), at(3600), at(60)]);
  await db.admin.query("update sextant.tenants set rate_per_minute = 11, rate_per_hour = 222, tenant_rate_per_day = 3333 where slug = 'acme'");
  await db.admin.query("select * from sextant_private.upsert_user('kim@acme.test', null, $1, 'acme', 'analyst')", ["Kim <b>K</b>"]);
  await db.admin.query("select * from sextant_private.upsert_user('gil@globex.test', null, 'Gil', 'globex', 'admin')");
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__admin");
    const use = (await c.query("select scope, principal, window_name, used::int, cap from sextant.rate_limit_use()")).rows;
    expect(use).toEqual([
      { scope: "tenant", principal: null, window_name: "day", used: 40, cap: 3333 },
      { scope: "person", principal: "kim@acme.test", window_name: "hour", used: 12, cap: 222 },
      { scope: "person", principal: "a_b%c:d", window_name: "hour", used: 5, cap: 222 },
      { scope: "person", principal: "kim@acme.test", window_name: "minute", used: 3, cap: 11 },
    ]);
    const people = (await c.query("select email, display_name, access_level from sextant.list_people()")).rows;
    expect(people).toEqual(expect.arrayContaining([{ email: "kim@acme.test", display_name: "Kim <b>K</b>", access_level: "analyst" }]));
    expect(people.map((p) => p.email)).not.toContain("gil@globex.test");
  });
  for (const role of ["sextant_t_acme", "sextant_t_acme__analyst"]) {
    await withTx(db.auth, async (c) => {
      await asRole(c, role);
      await expect(c.query("select * from sextant.rate_limit_use()")).rejects.toMatchObject({ code: "SX403", message: /rate-limit use/ });
      await c.query("rollback; begin");
      await asRole(c, role);
      await expect(c.query("select * from sextant.list_people()")).rejects.toMatchObject({ code: "SX403" });
    });
  }
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_globex__admin");
    expect((await c.query("select principal, used::int from sextant.rate_limit_use() where scope = 'person'")).rows).toEqual([{ principal: "gil@globex.test", used: 7 }]);
  });
  // Provisioned schemas with their expiry: the tenant's own only, whoever in it asks.
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme__analyst");
    await c.query("select sextant.provision_schema('scratch', 5)");
    await c.query("commit");
  });
  await db.admin.query("create table t_acme__scratch.notes (id int)");
  await withTx(db.auth, async (c) => {
    await asRole(c, "sextant_t_acme");
    const rows = (await c.query("select schema_name, tables::int, pipelines::int, expires_at > now() + interval '4 hours' as later from sextant.list_provisioned_schemas()")).rows;
    expect(rows).toEqual([{ schema_name: "t_acme__scratch", tables: 1, pipelines: 0, later: true }]);
    await asRole(c, "sextant_t_globex__admin");
    expect((await c.query("select * from sextant.list_provisioned_schemas()")).rows).toEqual([]);
  });
});
