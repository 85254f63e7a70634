import { randomBytes } from "node:crypto";
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JSONWebKeySet, type JWTPayload, type JWTVerifyOptions } from "jose";
import type pg from "pg";

const ALG = "ES256";

/** Creates and stores a new ES256 signing key (the previous one keeps verifying for a day). Admin connection. */
export async function rotateSigningKey(admin: pg.ClientBase): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  const kid = randomBytes(9).toString("base64url");
  const priv = { ...(await exportJWK(privateKey)), kid, alg: ALG };
  const pub = { ...(await exportJWK(publicKey)), kid, alg: ALG, use: "sig" };
  await admin.query("select sextant_private.oauth_add_key($1, $2, $3)", [kid, JSON.stringify(priv), JSON.stringify(pub)]);
  return kid;
}

/** A signing key exists after this (server start). */
export async function ensureSigningKey(admin: pg.ClientBase): Promise<void> {
  const { rowCount } = await admin.query("select 1 from sextant_private.oauth_keys where retired_at is null");
  if (!rowCount) await rotateSigningKey(admin);
}

/**
 * Sextant's keys as the server (authenticator) sees them: signs with the current private key,
 * verifies with the published ones. Reloaded every minute, and at once when a token names a
 * key it does not know (rotation by another process).
 */
export class KeyRing {
  private signing?: { kid: string; key: CryptoKey | Uint8Array; at: number };
  private jwks?: { set: JSONWebKeySet; verify: ReturnType<typeof createLocalJWKSet>; at: number };

  constructor(private readonly pool: pg.Pool) {}

  private async signingKey() {
    if (!this.signing || Date.now() - this.signing.at > 60_000) {
      const { rows } = await this.pool.query("select * from sextant_private.oauth_signing_key()");
      if (!rows[0]) throw new Error("no OAuth signing key; run `sextant oauth rotate-key`");
      this.signing = { kid: rows[0].kid, key: await importJWK(JSON.parse(rows[0].private_jwk), ALG), at: Date.now() };
    }
    return this.signing;
  }

  async publicKeys(force = false): Promise<JSONWebKeySet> {
    if (force || !this.jwks || Date.now() - this.jwks.at > 60_000) {
      const { rows } = await this.pool.query("select sextant_private.oauth_public_keys() as keys");
      const set = { keys: rows[0].keys };
      this.jwks = { set, verify: createLocalJWKSet(set), at: Date.now() };
    }
    return this.jwks!.set;
  }

  async sign(claims: JWTPayload, opts: { typ: string; issuer: string; audience: string; subject: string; ttlSeconds: number }): Promise<string> {
    const { kid, key } = await this.signingKey();
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid, typ: opts.typ })
      .setIssuer(opts.issuer)
      .setAudience(opts.audience)
      .setSubject(opts.subject)
      .setIssuedAt()
      .setJti(randomBytes(12).toString("base64url"))
      .setExpirationTime(Math.floor(Date.now() / 1000) + opts.ttlSeconds)
      .sign(key);
  }

  async verify(token: string, options: JWTVerifyOptions): Promise<JWTPayload> {
    await this.publicKeys();
    const opts = { ...options, algorithms: [ALG], clockTolerance: 5 };
    try {
      return (await jwtVerify(token, this.jwks!.verify, opts)).payload;
    } catch (error) {
      if ((error as { code?: string }).code !== "ERR_JWKS_NO_MATCHING_KEY") throw error;
      await this.publicKeys(true);
      return (await jwtVerify(token, this.jwks!.verify, opts)).payload;
    }
  }
}
