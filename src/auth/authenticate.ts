import type pg from "pg";
import type { Config } from "../config.ts";
import { SextantError } from "../db/errors.ts";
import type { Principal } from "./principal.ts";
import { createTenantLimits } from "./tenantLimits.ts";
import { createJwtVerifier } from "./verifyJwt.ts";

export type Authenticate = (token: string) => Promise<Principal>;

const LEVELS = new Set(["viewer", "analyst", "admin"]);

function unauthorized(message: string): SextantError {
  return new SextantError("SX401", message);
}

/**
 * Turns a Bearer credential into a Principal: `sxt_…` API tokens are looked up by hash in
 * PostgreSQL; anything else must be a JWT that verifies. Throws SX401 otherwise. The token
 * itself is never logged or echoed.
 */
export function createAuthenticator(pool: pg.Pool, config: Config): Authenticate {
  const verifyJwt = createJwtVerifier(config);
  const limits = createTenantLimits(pool);

  return async (token: string) => {
    if (token.startsWith("sxt_")) {
      const { rows } = await pool.query("select * from sextant_private.authenticate_token($1)", [token]);
      const row = rows[0];
      if (!row) throw unauthorized("the API token is unknown, revoked or expired");
      return {
        tenant: row.tenant_slug,
        accessLevel: row.access_level,
        dbRole: row.db_role,
        subject: row.principal_name,
        authMethod: "api_token",
        statementTimeoutMs: (await limits(row.tenant_slug)).statementTimeoutMs,
        ...(row.expires_at ? { expiresAt: Math.floor(new Date(row.expires_at).getTime() / 1000) } : {}),
      };
    }
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
    if (typeof tenant !== "string" || typeof level !== "string" || !LEVELS.has(level)) {
      throw unauthorized("the JWT must carry a tenant claim and an access_level of viewer, analyst or admin");
    }
    let dbRole: string;
    try {
      const { rows } = await pool.query("select sextant_private.tenant_role($1, $2) as role", [tenant, level]);
      dbRole = rows[0].role;
    } catch {
      throw unauthorized(`the JWT names tenant "${tenant.slice(0, 40)}", which does not exist`);
    }
    return {
      tenant,
      accessLevel: level as Principal["accessLevel"],
      dbRole,
      subject: String(claims.sub),
      authMethod: "jwt",
      statementTimeoutMs: (await limits(tenant)).statementTimeoutMs,
      ...(claims.exp ? { expiresAt: claims.exp } : {}),
    };
  };
}
