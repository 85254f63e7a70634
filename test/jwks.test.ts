import http from "node:http";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, expect, test } from "vitest";
import { gql } from "./helpers/graphql.ts";
import { useTestServer } from "./helpers/setup.ts";

// JWTs signed by an identity provider's keys, fetched from its JWKS URL (a local server here).
let jwks: http.Server;
let privateKey: CryptoKey;
let otherKey: CryptoKey;

const { server } = useTestServer(async () => {
  const pair = await generateKeyPair("ES256");
  privateKey = pair.privateKey;
  otherKey = (await generateKeyPair("ES256")).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  jwks = http.createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", () => r()));
  const url = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks.json`;
  return { SEXTANT_JWT_SECRET: "", SEXTANT_JWKS_URL: url, SEXTANT_JWT_ISSUER: "https://idp.test", SEXTANT_JWT_AUDIENCE: "sextant-api" };
});
afterAll(() => void jwks?.close());

const sign = (key: CryptoKey, claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "k1" }).setSubject("ann@idp.test")
    .setIssuer("https://idp.test").setAudience("sextant-api").setExpirationTime("5m").sign(key);

async function whoami(token: string) {
  const { status, body } = await gql(server.url, token, "{ whoami { tenant accessLevel principal } }");
  return { status, body };
}

test("a JWT signed by a key from the JWKS URL is accepted", async () => {
  const r = await whoami(await sign(privateKey, { tenant: "acme", access_level: "analyst" }));
  expect(r.status).toBe(200);
  expect(r.body.data.whoami).toEqual({ tenant: "acme", accessLevel: "analyst", principal: "ann@idp.test" });
});

test("a JWT signed by another key is refused", async () => {
  expect((await whoami(await sign(otherKey, { tenant: "acme" }))).status).toBe(401);
});

test("an HS256 JWT is refused when only JWKS keys are trusted (no algorithm confusion)", async () => {
  const hs = await new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg: "HS256", kid: "k1" }).setSubject("x")
    .setIssuer("https://idp.test").setAudience("sextant-api").setExpirationTime("5m").sign(new TextEncoder().encode("x".repeat(40)));
  expect((await whoami(hs)).status).toBe(401);
});
