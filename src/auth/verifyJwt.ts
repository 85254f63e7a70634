import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";
import type { Config } from "../config.ts";

export type JwtVerifier = (token: string) => Promise<JWTPayload>;

/**
 * A verifier for JWTs signed with SEXTANT_JWT_SECRET (HS256) or by the keys at SEXTANT_JWKS_URL;
 * undefined when neither is configured. `exp`, `sub`, issuer and audience are required;
 * the algorithm list is fixed, so `alg: none` and algorithm confusion are refused.
 */
export function createJwtVerifier(config: Config): JwtVerifier | undefined {
  const options = {
    issuer: config.jwtIssuer ?? "sextant",
    audience: config.jwtAudience ?? config.publicUrl,
    requiredClaims: ["exp", "sub"],
    clockTolerance: 5,
  };
  if (config.jwtSecret) {
    const key = new TextEncoder().encode(config.jwtSecret);
    return async (token) => (await jwtVerify(token, key, { ...options, algorithms: ["HS256"] })).payload;
  }
  if (config.jwksUrl) {
    const jwks = createRemoteJWKSet(new URL(config.jwksUrl));
    return async (token) =>
      (await jwtVerify(token, jwks, { ...options, algorithms: ["RS256", "PS256", "ES256", "EdDSA"] })).payload;
  }
  return undefined;
}
