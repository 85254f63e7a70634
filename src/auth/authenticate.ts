import { hash } from "node:crypto";
import type pg from "pg";
import type { Config } from "../config.ts";
import { SextantError } from "../db/errors.ts";
import { listenForAuthChanges } from "./changeListener.ts";
import { buildPrincipal, type Principal } from "./principal.ts";
import { createTenantLimits, type TenantLimitsCache } from "./tenantLimits.ts";
import { decodeJwt, decodeProtectedHeader } from "jose";
import type { KeyRing } from "../oauth/keys.ts";
import { createJwtVerifier } from "./verifyJwt.ts";

export type Authenticate = (token: string) => Promise<Principal>;

export interface Authenticator {
  authenticate: Authenticate;
  limits: TenantLimitsCache;
  /** Drops cached credentials now (this server revoked something; NOTIFY tells the others). */
  forget(): void;
  close(): Promise<void>;
}

const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 10_000;

function unauthorized(message: string): SextantError {
  return new SextantError("SX401", message);
}

/**
 * Turns a Bearer credential into a Principal: `sxt_…` API tokens are looked up by hash in
 * PostgreSQL; anything else must be a JWT that verifies. Throws SX401 otherwise. The token
 * itself is never logged or echoed.
 *
 * Verified credentials are cached (keyed by their SHA-256) until a token, principal or tenant
 * changes anywhere — triggers notify every server — or for a minute at most; while the
 * notification connection is down nothing is served from the cache. Expiry is checked on
 * every use.
 */
export function createAuthenticator(pool: pg.Pool, config: Config, keys?: KeyRing): Authenticator {
  const verifyJwt = createJwtVerifier(config);
  const limits = createTenantLimits(pool);
  const cache = new Map<string, { at: number; principal: Principal }>();
  const listener = listenForAuthChanges(pool, () => {
    cache.clear();
    limits.clear();
  });

  const authenticate: Authenticate = async (token) => {
    const key = hash("sha256", token, "base64"); // one-shot: no Hash object per request
    const hit = cache.get(key);
    const now = Date.now();
    if (hit && listener.healthy() && now - hit.at < CACHE_TTL_MS && (hit.principal.expiresAt ?? Infinity) * 1000 > now) {
      return hit.principal;
    }
    const principal = await verify(token);
    if (listener.healthy()) {
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(key, { at: now, principal });
    }
    return principal;
  };

  const verify = async (token: string): Promise<Principal> => {
    if (token.startsWith("sxt_")) {
      const { rows } = await pool.query("select * from sextant_private.authenticate_token($1)", [token]);
      const row = rows[0];
      if (!row) throw unauthorized("the API token is unknown, revoked or expired");
      return buildPrincipal(pool, {
        tenant: row.tenant_slug,
        accessLevel: row.access_level,
        dbRole: row.db_role,
        subject: row.principal_name,
        authMethod: "api_token",
        ...(row.expires_at ? { expiresAt: Math.floor(new Date(row.expires_at).getTime() / 1000) } : {}),
        ...(row.tool_groups ? { toolGroups: row.tool_groups } : {}),
      }, limits);
    }
    if (keys && isSextantAccessToken(token)) return verifyAccessToken(token, keys);
    if (!verifyJwt) throw unauthorized("the token is not a Sextant API token and JWTs are not configured");
    let claims;
    try {
      claims = await verifyJwt(token);
    } catch (error) {
      const reason = (error as { code?: string }).code ?? "invalid";
      throw unauthorized(`the JWT was refused (${reason})`);
    }
    const tenant = claims.tenant;
    const level = claims.access_level ?? "viewer";
    if (typeof tenant !== "string" || typeof level !== "string") {
      throw unauthorized("the JWT must carry a tenant claim and an access_level of viewer, analyst or admin");
    }
    try {
      return await buildPrincipal(pool, {
        tenant, accessLevel: level, subject: String(claims.sub), authMethod: "jwt", ...(claims.exp ? { expiresAt: claims.exp } : {}),
      }, limits);
    } catch (error) {
      // The level and the tenant are checked in SQL (tenant_role); what it refuses is the claims'
      // fault (SX400 level, SX404 or a text PostgreSQL cannot take: tenant). A database away is not.
      const code = (error as { code?: unknown }).code;
      if (code === "SX400") throw unauthorized("the JWT must carry a tenant claim and an access_level of viewer, analyst or admin");
      if (typeof code === "string" && !/^(08|53|57|E)/.test(code)) throw unauthorized(`the JWT names tenant "${tenant.slice(0, 40)}", which does not exist`);
      throw error;
    }
  };

  /** Only a peek, to route the token; everything is verified below. */
  const isSextantAccessToken = (token: string) => {
    try {
      return decodeProtectedHeader(token).typ === "at+jwt" && decodeJwt(token).iss === config.publicUrl;
    } catch {
      return false;
    }
  };

  /**
   * An OAuth access token Sextant signed: signature, issuer, expiry, and its grant, which must
   * still be valid (not revoked; the person still in the tenant at that level).
   */
  const verifyAccessToken = async (token: string, ring: KeyRing): Promise<Principal> => {
    let claims;
    try {
      claims = await ring.verify(token, { issuer: config.publicUrl, typ: "at+jwt", requiredClaims: ["exp", "sub", "aud", "sid"] });
    } catch (error) {
      throw unauthorized(`the access token was refused (${(error as { code?: string }).code ?? "invalid"})`);
    }
    const { rows } = await pool.query("select sextant_private.oauth_grant_check($1) as g", [String(claims.sid)]);
    const grant = rows[0].g as { tenant: string; access_level: string; principal: string } | null;
    if (!grant || grant.tenant !== claims.tenant || grant.access_level !== claims.access_level) {
      throw unauthorized("the access token's grant was revoked or no longer matches the person's access");
    }
    return buildPrincipal(pool, {
      tenant: grant.tenant,
      accessLevel: grant.access_level,
      subject: grant.principal,
      authMethod: "oauth",
      audience: ([] as string[]).concat(claims.aud ?? []),
      expiresAt: claims.exp,
    }, limits);
  };

  return { authenticate, limits, forget: () => cache.clear(), close: () => listener.close() };
}
