import { context, sideEffect, type Step } from "postgraphile/grafast";
import { wrapPlans } from "postgraphile/utils";
import type { AuditLog } from "../../audit/auditLog.ts";
import type { Principal } from "../../auth/principal.ts";
import { toPublicError } from "../../db/errors.ts";
import { guardSql } from "../../query/guard.ts";

declare global {
  namespace Grafast {
    interface Context {
      /** Who is calling; set in preset.ts from the request's verified credentials. */
      principal?: Principal;
    }
  }
}

/**
 * The parser guard on GraphQL's SQL-text fields (Query.query, Query.explainQuery), the same
 * guard MCP uses. It runs as a side effect before the SQL function is called; its outcome and
 * the SQL text go to the audit log.
 */
export function guardQueryPlugin(audit: AuditLog | undefined) {
  const wrap = (tool: string) => (plan: () => Step, _$source: Step, fieldArgs: { getRaw(name: string): Step }) => {
    const $ctx = context() as unknown as Step<{ principal?: Principal }>;
    sideEffect([fieldArgs.getRaw("sql"), $ctx], ([sql, ctx]: readonly [string, { principal?: Principal }]) => {
      const started = performance.now();
      let failure: ReturnType<typeof toPublicError> | undefined;
      try {
        guardSql(sql);
      } catch (error) {
        failure = toPublicError(error);
        throw error;
      } finally {
        const p = ctx.principal;
        if (p) {
          audit?.record({
            at: new Date().toISOString(),
            tenant_slug: p.tenant,
            principal: p.subject,
            auth_method: p.authMethod,
            database_role: p.dbRole,
            tool: `graphql:${tool}`,
            sql,
            duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
            outcome: failure ? "refused" : "ok",
            error_code: failure?.code,
            error_message: failure?.message,
          });
        }
      }
    });
    return plan();
  };
  return wrapPlans({ Query: { query: wrap("query"), explainQuery: wrap("explain_query") } }, { name: "SextantGuardQueryPlugin" });
}
