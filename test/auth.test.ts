import { SignJWT, UnsecuredJWT, base64url } from "jose";
import { describe, expect, test } from "vitest";
import { createToken } from "./helpers/db.ts";
import { useTestServer } from "./helpers/setup.ts";
import { JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET } from "./helpers/server.ts";

const { db, server } = useTestServer();

const key = new TextEncoder().encode(JWT_SECRET);
function jwt(claims: Record<string, unknown>, opts: { exp?: string | number; aud?: string; iss?: string; secret?: Uint8Array } = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("jwt-user@example.com")
    .setIssuedAt()
    .setIssuer(opts.iss ?? JWT_ISSUER)
    .setAudience(opts.aud ?? JWT_AUDIENCE)
    .setExpirationTime(opts.exp ?? "5m")
    .sign(opts.secret ?? key);
}

/** whoami over GraphQL with the given Authorization header value (or none). */
async function whoami(authorization?: string) {
  const res = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ query: "{ whoami { tenant accessLevel databaseRole principal } }" }),
  });
  return { status: res.status, wwwAuthenticate: res.headers.get("www-authenticate"), body: await res.json() };
}

describe("API tokens", () => {
  test("a valid token authenticates as its tenant and level", async () => {
    const token = await createToken(db, "acme", "ann", "analyst");
    const r = await whoami(`Bearer ${token}`);
    expect(r.status).toBe(200);
    expect(r.body.data.whoami).toEqual({
      tenant: "acme",
      accessLevel: "analyst",
      databaseRole: "sextant_t_acme__analyst",
      principal: "ann",
    });
  });

  test("only a hash is stored, and the list view shows no secret", async () => {
    const token = await createToken(db, "acme", "hash-check");
    const { rows } = await db.admin.query(
      "select t.token_hash, l.* from sextant_private.api_tokens t join sextant_private.api_token_list l using (id) where l.principal_name = 'hash-check'",
    );
    expect(rows[0].token_hash).toHaveLength(32);
    expect(JSON.stringify(rows)).not.toContain(token.slice(13));
    expect(Object.keys(rows[0])).not.toContain("token");
  });

  test.each([
    ["missing", undefined],
    ["not bearer", "Basic dXNlcjpwYXNz"],
    ["garbage", "Bearer not-a-token"],
    ["unknown", "Bearer sxt_00000000_" + "0".repeat(64)],
    ["sql in token", "Bearer sxt_' or 1=1 --"],
  ])("a %s credential gets 401 with WWW-Authenticate", async (_name, header) => {
    const r = await whoami(header);
    expect(r.status).toBe(401);
    expect(r.wwwAuthenticate).toMatch(/^Bearer /);
    expect(JSON.stringify(r.body)).not.toMatch(/stack|at \//);
  });

  test("a tampered token is refused", async () => {
    const token = await createToken(db, "acme", "tamper");
    const last = token.at(-1) === "a" ? "b" : "a";
    expect((await whoami(`Bearer ${token.slice(0, -1)}${last}`)).status).toBe(401);
  });

  test("a revoked token is refused as soon as the server hears of it (milliseconds)", async () => {
    const token = await createToken(db, "acme", "revokee");
    expect((await whoami(`Bearer ${token}`)).status).toBe(200); // now cached
    await db.admin.query("select sextant_private.revoke_api_token($1)", [token.slice(4, 12)]);
    const revokedAt = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - revokedAt < 2000) status = (await whoami(`Bearer ${token}`)).status;
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(500);
  });

  test("an expired token is refused", async () => {
    const token = await createToken(db, "acme", "expiree", "viewer", "1 hour");
    await db.admin.query(
      "update sextant_private.api_tokens set expires_at = now() - interval '1 second' where prefix = $1",
      [token.slice(4, 12)],
    );
    expect((await whoami(`Bearer ${token}`)).status).toBe(401);
  });

  test("a token cannot be created already expired", async () => {
    await expect(createToken(db, "acme", "x", "viewer", "-1 hour")).rejects.toMatchObject({ code: "SX400" });
  });
});

describe("JWTs", () => {
  test("a valid HS256 JWT authenticates as its tenant claim", async () => {
    const r = await whoami(`Bearer ${await jwt({ tenant: "globex", access_level: "admin" })}`);
    expect(r.status).toBe(200);
    expect(r.body.data.whoami).toMatchObject({ tenant: "globex", accessLevel: "admin", principal: "jwt-user@example.com" });
  });

  test.each([
    ["expired", () => jwt({ tenant: "acme" }, { exp: Math.floor(Date.now() / 1000) - 60 })],
    ["wrong audience", () => jwt({ tenant: "acme" }, { aud: "https://other.example" })],
    ["wrong issuer", () => jwt({ tenant: "acme" }, { iss: "https://evil.example" })],
    ["wrong key", () => jwt({ tenant: "acme" }, { secret: new TextEncoder().encode("x".repeat(48)) })],
    ["unknown tenant", () => jwt({ tenant: "nosuch" })],
    ["no tenant", () => jwt({})],
    ["bad access level", () => jwt({ tenant: "acme", access_level: "superuser" })],
    ["role injection", () => jwt({ tenant: "acme'; set role postgres; --" })],
    [
      "alg none",
      async () =>
        new UnsecuredJWT({ tenant: "acme", access_level: "admin" })
          .setSubject("x")
          .setIssuer(JWT_ISSUER)
          .setAudience(JWT_AUDIENCE)
          .setExpirationTime("5m")
          .encode(),
    ],
    [
      "tampered payload",
      async () => {
        const [h, , s] = (await jwt({ tenant: "acme" })).split(".");
        const forged = base64url.encode(
          JSON.stringify({ tenant: "globex", access_level: "admin", sub: "x", aud: JWT_AUDIENCE, iss: JWT_ISSUER, exp: 9999999999 }),
        );
        return `${h}.${forged}.${s}`;
      },
    ],
  ])("a JWT that is %s gets 401", async (_name, make) => {
    const r = await whoami(`Bearer ${await make()}`);
    expect(r.status).toBe(401);
    expect(r.wwwAuthenticate).toMatch(/^Bearer error="invalid_token"/);
  });
});
