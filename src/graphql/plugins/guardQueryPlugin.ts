import { sideEffect, type Step } from "postgraphile/grafast";
import { wrapPlans } from "postgraphile/utils";
import type { Principal } from "../../auth/principal.ts";
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
 * guard MCP uses. It runs as a side effect before the SQL function is called; a refusal is the
 * field's error, audited with every other field by the operation gate (operationPlugin.ts).
 */
export function guardQueryPlugin() {
  const wrap = () => (plan: () => Step, _$source: Step, fieldArgs: { getRaw(name: string): Step }) => {
    sideEffect([fieldArgs.getRaw("sql")], ([sql]: readonly [string]) => {
      guardSql(sql);
    });
    return plan();
  };
  return wrapPlans({ Query: { query: wrap(), explainQuery: wrap() } }, { name: "SextantGuardQueryPlugin" });
}
