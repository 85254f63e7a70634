/** Who is calling, after authentication: the only input to role and settings. */
export interface Principal {
  /** Tenant slug. */
  tenant: string;
  accessLevel: "viewer" | "analyst" | "admin";
  /** The database role the call runs as (sextant_t_<tenant>[__analyst|__admin]). */
  dbRole: string;
  /** Person or agent name (API token) or JWT `sub`: for audit, never for access decisions. */
  subject: string;
  authMethod: "api_token" | "jwt" | "oauth" | "local";
  /** The tenant's statement timeout, applied to every call. */
  statementTimeoutMs: number;
  /** OAuth access tokens: the resources (RFC 8707) the token is for; undefined for other credentials. */
  audience?: string[];
  /** Seconds since the epoch; undefined for credentials that do not expire. */
  expiresAt?: number;
}
