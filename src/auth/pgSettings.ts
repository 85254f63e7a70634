import type pg from "pg";
import type { Principal } from "./principal.ts";

/**
 * The only mapping from a verified principal to Postgres settings, for every door. With a
 * `traceparent` (tracing on: src/telemetry/tracing.ts), the session is named after the span.
 */
export function toPgSettings(p: Principal, traceparent?: string): Record<string, string> {
  // jwt.claims.* are for audit only: SQL could overwrite them, so no policy trusts them.
  return {
    role: p.dbRole,
    statement_timeout: String(p.statementTimeoutMs),
    "jwt.claims.sub": p.subject,
    "jwt.claims.auth": p.authMethod,
    ...(traceparent ? { application_name: `sextant ${traceparent}` } : {}),
  };
}

/**
 * `select set_config(…, true), …` for the principal's settings (values quoted with pg's
 * escapeLiteral): one statement, so that it can travel with `begin` in one round trip.
 * Transaction-local: role and settings end with the transaction.
 */
export function settingsSql(client: Pick<pg.ClientBase, "escapeLiteral">, p: Principal, traceparent?: string): string {
  const settings = Object.entries(toPgSettings(p, traceparent))
    .map(([k, v]) => `set_config(${client.escapeLiteral(k)}, ${client.escapeLiteral(v)}, true)`)
    .join(", ");
  return `select ${settings}`;
}
