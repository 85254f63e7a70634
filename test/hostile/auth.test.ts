import { SignJWT } from "jose";
import { describe, expect, test } from "vitest";
import { withTx } from "../helpers/db.ts";
import { useTestServer } from "../helpers/setup.ts";
import { JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET } from "../helpers/server.ts";
import { hostileAuthorizationHeaders, hostileSlugs } from "./auth.corpus.ts";

const { db, server } = useTestServer();

async function tryDoors(authorization: string) {
  const init = (body: string) => ({
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization },
    body,
  });
  const gql = await fetch(`${server.url}/graphql`, init(JSON.stringify({ query: "{ whoami { tenant } }" })));
  const mcp = await fetch(
    `${server.url}/mcp`,
    init(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } })),
  );
  return [
    { status: gql.status, text: await gql.text() },
    { status: mcp.status, text: await mcp.text() },
  ];
}

describe("hostile credentials", () => {
  test.each(hostileAuthorizationHeaders)("%s is refused on /graphql and /mcp", async (_name, header) => {
    for (const r of await tryDoors(header)) {
      expect(r.status).toBe(header.length > 16_000 ? 431 : 401);
      expect(r.text).not.toMatch(/acme_sales|globex|at .*\.(ts|js):\d+/);
    }
  });

  test.each([
    ["tenant as array", { tenant: ["acme", "globex"] }],
    ["tenant as object", { tenant: { slug: "acme" } }],
    ["tenant with role suffix", { tenant: "acme__admin" }],
    ["tenant naming a system role", { tenant: "../../postgres" }],
    ["access level case trick", { tenant: "acme", access_level: "Admin" }],
    ["access level as array", { tenant: "acme", access_level: ["admin"] }],
  ])("a signed JWT with %s is refused", async (_name, claims) => {
    const token = await new SignJWT(claims as Record<string, unknown>)
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("mallory")
      .setIssuer(JWT_ISSUER)
      .setAudience(JWT_AUDIENCE)
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(JWT_SECRET));
    for (const r of await tryDoors(`Bearer ${token}`)) expect(r.status).toBe(401);
  });

  test.each(hostileSlugs)("create_tenant refuses slug %j and creates no role", (slug) =>
    withTx(db.admin, async (client) => {
      const before = (await client.query("select count(*)::int as n from pg_roles")).rows[0].n;
      await client.query("savepoint s");
      await expect(client.query("select sextant_private.create_tenant($1, 'x', '{}')", [slug])).rejects.toMatchObject({
        code: expect.stringMatching(/^(SX400|22021)$/), // 22021: a NUL byte never reaches the function
      });
      await client.query("rollback to savepoint s");
      expect((await client.query("select count(*)::int as n from pg_roles")).rows[0].n).toBe(before);
    }));
});
