import type { Principal } from "./principal.ts";

/** The only mapping from a verified principal to Postgres settings. */
export function toPgSettings(p: Principal): Record<string, string> {
  // jwt.claims.* are for audit only: SQL could overwrite them, so no policy trusts them.
  return {
    role: p.dbRole,
    statement_timeout: String(p.statementTimeoutMs),
    "jwt.claims.sub": p.subject,
    "jwt.claims.auth": p.authMethod,
  };
}
