import type pg from "pg";
import { createTenantLimits, type TenantLimitsCache } from "./tenantLimits.ts";

/** Who is calling, after authentication: the only input to role and settings. */
export interface Principal {
  /** Tenant slug. */
  tenant: string;
  accessLevel: "viewer" | "analyst" | "admin";
  /** The database role the call runs as (sextant_t_<tenant>[__analyst|__admin]). */
  dbRole: string;
  /** Person or agent name (API token) or JWT `sub`: for audit, never for access decisions. */
  subject: string;
  authMethod: "api_token" | "jwt" | "oauth" | "local" | "slack" | "console";
  /** The tenant's statement timeout, applied to every call. */
  statementTimeoutMs: number;
  /** OAuth access tokens: the resources (RFC 8707) the token is for; undefined for other credentials. */
  audience?: string[];
  /** Seconds since the epoch; undefined for credentials that do not expire. */
  expiresAt?: number;
  /** API tokens: the MCP tool groups the token is for (what a header may narrow); undefined: all. */
  toolGroups?: readonly string[];
}

/** What a door knows about a caller once their credential is verified. */
export interface PrincipalFacts {
  tenant: string;
  /** Checked in SQL (sextant_private.tenant_role), not here: the levels are defined once, there. */
  accessLevel: string;
  subject: string;
  authMethod: Principal["authMethod"];
  /** The role, when SQL already resolved it (authenticate_token calls tenant_role itself). */
  dbRole?: string;
  audience?: string[];
  expiresAt?: number;
  toolGroups?: readonly string[];
}

type Queryable = Pick<pg.ClientBase, "query">;

/**
 * The one constructor of a Principal, for every door (API token, JWT, OAuth, MCP stdio, CLI).
 * The role comes from sextant_private.tenant_role, which refuses a level that is not one of
 * SQL's levels (SX400) and an unknown tenant (SX404); the statement timeout from the tenant's
 * limits (`limits`, or one read of sextant_private.tenant_limits).
 */
export async function buildPrincipal(db: Queryable, facts: PrincipalFacts, limits?: TenantLimitsCache): Promise<Principal> {
  const dbRole = facts.dbRole ?? (await db.query("select sextant_private.tenant_role($1, $2) as role", [facts.tenant, facts.accessLevel])).rows[0].role;
  const { statementTimeoutMs } = await (limits ?? createTenantLimits(db)).get(facts.tenant);
  return {
    tenant: facts.tenant,
    accessLevel: facts.accessLevel as Principal["accessLevel"],
    dbRole,
    subject: facts.subject,
    authMethod: facts.authMethod,
    statementTimeoutMs,
    ...(facts.audience ? { audience: facts.audience } : {}),
    ...(facts.expiresAt !== undefined ? { expiresAt: facts.expiresAt } : {}),
    ...(facts.toolGroups ? { toolGroups: facts.toolGroups } : {}),
  };
}
