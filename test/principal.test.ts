import { SignJWT } from "jose";
import { beforeAll, describe, expect, test } from "vitest";
import { createAuthenticator } from "../src/auth/authenticate.ts";
import { buildPrincipal } from "../src/auth/principal.ts";
import { asTenant } from "../src/cli/pipeline.ts";
import { loadConfig } from "../src/config.ts";
import pg from "pg";
import { escapeLiteral, inlineParams, queryAsRole } from "../src/db/queryAsRole.ts";
import { asRole, createToken, withTx } from "./helpers/db.ts";
import { JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET } from "./helpers/server.ts";
import { useTestDatabase } from "./helpers/setup.ts";

const db = useTestDatabase();
beforeAll(async () => {
  await db.admin.query("update sextant.tenants set statement_timeout_ms = 4321 where slug = 'acme'");
});

const jwt = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("jo@example.com").setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE).setExpirationTime("5m").sign(new TextEncoder().encode(JWT_SECRET));

describe("one principal constructor", () => {
  test("the role and the statement timeout come from SQL, for every level", async () => {
    for (const [level, role] of [["viewer", "sextant_t_acme"], ["analyst", "sextant_t_acme__analyst"], ["admin", "sextant_t_acme__admin"]]) {
      const p = await buildPrincipal(db.auth, { tenant: "acme", accessLevel: level!, subject: "jo", authMethod: "local" });
      expect(p).toEqual({ tenant: "acme", accessLevel: level, dbRole: role, subject: "jo", authMethod: "local", statementTimeoutMs: 4321 });
    }
  });

  test("a level SQL does not define is refused (SX400), and so is an unknown tenant (SX404)", async () => {
    await expect(buildPrincipal(db.auth, { tenant: "acme", accessLevel: "owner", subject: "jo", authMethod: "local" }))
      .rejects.toMatchObject({ code: "SX400" });
    await expect(buildPrincipal(db.auth, { tenant: "nosuch", accessLevel: "viewer", subject: "jo", authMethod: "local" }))
      .rejects.toMatchObject({ code: "SX404" });
  });

  test("API tokens, JWTs and their refusals all go through it", async () => {
    const config = loadConfig({ DATABASE_URL: db.adminUrl, SEXTANT_JWT_SECRET: JWT_SECRET, SEXTANT_JWT_AUDIENCE: JWT_AUDIENCE, SEXTANT_JWT_ISSUER: JWT_ISSUER });
    const auth = createAuthenticator(db.auth, config);
    try {
      const token = await createToken(db, "acme", "principal-test-bot", "analyst");
      expect(await auth.authenticate(token)).toMatchObject({ dbRole: "sextant_t_acme__analyst", authMethod: "api_token", statementTimeoutMs: 4321 });
      expect(await auth.authenticate(await jwt({ tenant: "acme", access_level: "admin" })))
        .toMatchObject({ dbRole: "sextant_t_acme__admin", authMethod: "jwt", subject: "jo@example.com", statementTimeoutMs: 4321 });
      await expect(auth.authenticate(await jwt({ tenant: "acme", access_level: "superuser" })))
        .rejects.toMatchObject({ code: "SX401", message: expect.stringContaining("access_level of viewer, analyst or admin") });
      await expect(auth.authenticate(await jwt({ tenant: "nosuch" })))
        .rejects.toMatchObject({ code: "SX401", message: expect.stringContaining("does not exist") });
      await expect(auth.authenticate(await jwt({ tenant: "ac\u0000me" }))).rejects.toMatchObject({ code: "SX401" });
    } finally {
      await auth.close();
    }
  });
});

describe("one settings mapping for every door", () => {
  test("the CLI's tenant transactions carry the same role, statement timeout and identity as a tool call", async () => {
    const client = await db.admin.connect();
    try {
      const cli = await asTenant(client, "acme", "analyst", async () =>
        (await client.query(`select current_user as role, current_setting('statement_timeout') as timeout,
                                    current_setting('jwt.claims.auth') as auth, sextant.current_access_level() as level`)).rows[0]);
      expect(cli).toEqual({ role: "sextant_t_acme__analyst", timeout: "4321ms", auth: "local", level: "analyst" });
      // Transaction-local: nothing is left on the connection.
      expect((await client.query("select current_user as u, current_setting('statement_timeout') as t")).rows[0]).not.toMatchObject({ u: "sextant_t_acme__analyst" });
    } finally {
      client.release();
    }
    const p = await buildPrincipal(db.auth, { tenant: "acme", accessLevel: "analyst", subject: "jo", authMethod: "api_token" });
    const [tool] = await queryAsRole(db.auth, p, "select current_user as role, current_setting('statement_timeout') as timeout", []);
    expect(tool).toEqual({ role: "sextant_t_acme__analyst", timeout: "4321ms" });
  });

  test("settings values are quoted, whatever the subject holds", async () => {
    const p = await buildPrincipal(db.auth, { tenant: "acme", accessLevel: "viewer", subject: "x', 'y'); drop table sextant.tenants; --", authMethod: "jwt" });
    const [row] = await queryAsRole(db.auth, p, "select current_setting('jwt.claims.sub') as sub", []);
    expect(row!.sub).toBe(p.subject);
  });

  test("a tool's arguments become the literals pg's escapeLiteral makes, and PostgreSQL reads them back unchanged", async () => {
    const texts = ["", "plain", "it's", "''", "\\", "a\\'b", "\\'; select 1; --", "E'x'", "tab\tnew\nline", "ünï©ødé 😀", "\ud800 lone", "$1 $$ $q$", "'".repeat(50) + "\\".repeat(50)];
    for (let i = 0; i < 300; i++) texts.push(Array.from({ length: i % 23 }, (_, k) => "a'\\\"$ é😀\u0001"[(i * 7 + k * 13) % 12]).join(""));
    for (const t of texts) expect(escapeLiteral(t), JSON.stringify(t)).toBe(pg.escapeLiteral(t));
    const client = await db.auth.connect();
    try {
      const sendable = texts.filter((t) => !/[\ud800-\udfff]/.test(t.replace(/[\ud800-\udbff][\udc00-\udfff]/g, "")));
      const { rows } = await client.query(inlineParams(client, "select $1::text[] as a, $2::text as b", [sendable, sendable.at(-1)]));
      expect(rows[0].a).toEqual(sendable);
      expect(rows[0].b).toBe(sendable.at(-1));
    } finally {
      client.release();
    }
  });
});

describe("one SQL level check", () => {
  test("require_level lets a level and those above it through, and refuses those below with SX403", () =>
    withTx(db.auth, async (client) => {
      await client.query("savepoint s");
      await asRole(client, "sextant_t_acme");
      await expect(client.query("select sextant.require_level('analyst', 'doing things')")).rejects.toMatchObject({
        code: "SX403", message: "doing things needs the analyst or admin role of a tenant",
      });
      await client.query("rollback to savepoint s");
      await asRole(client, "sextant_t_acme__analyst");
      await client.query("select sextant.require_level('analyst', 'doing things')");
      await expect(client.query("select sextant.require_level('admin', 'doing things')")).rejects.toMatchObject({
        code: "SX403", message: "doing things needs the admin role of a tenant",
      });
      await client.query("rollback to savepoint s");
      await asRole(client, "sextant_t_acme__admin");
      await client.query("select sextant.require_level('admin', 'doing things')");
      await expect(client.query("select sextant.require_level('root', 'doing things')")).rejects.toMatchObject({ code: "SX400" });
    }));

  test("the authenticator itself, outside any tenant, holds no level", () =>
    withTx(db.auth, async (client) => {
      await expect(client.query("select sextant.require_level('viewer', 'reading')")).rejects.toMatchObject({ code: "SX403" });
    }));

  test("the functions that need a level use it: a viewer cannot record a learning, through the SQL door", () =>
    withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      await expect(client.query("select sextant.save_learning('x', 'acme_sales.orders', 0.5)")).rejects.toMatchObject({
        code: "SX403", message: expect.stringMatching(/^recording learnings needs the analyst or admin role/),
      });
    }));

  test("levels and their order are read from SQL (tokens keep the highest level a principal was given)", async () => {
    const { rows } = await db.auth.query("select sextant.access_levels() as l, sextant.level_rank('admin') as a, sextant.level_rank('nope') as n");
    expect(rows[0]).toEqual({ l: ["viewer", "analyst", "admin"], a: 3, n: null });
    await createToken(db, "acme", "rank-bot", "admin");
    await createToken(db, "acme", "rank-bot", "viewer");
    const { rows: p } = await db.admin.query("select access_level from sextant.principals where tenant_slug = 'acme' and name = 'rank-bot'");
    expect(p[0].access_level).toBe("admin");
  });
});
