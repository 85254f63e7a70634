import type pg from "pg";
import { postgraphile, type PostGraphileInstance } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { GraphQLError } from "postgraphile/graphql";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import type { OperationGate } from "../audit/operation.ts";
import { toPgSettings } from "../auth/pgSettings.ts";
import { requestTraceparent } from "../telemetry/tracing.ts";
import { principalFromAuth } from "../auth/bearer.ts";
import { toPublicError } from "../db/errors.ts";
import { costLimitRule, DEFAULT_COST_LIMITS, type CostLimits } from "./cost.ts";
import { cancelledWithCaller, withCallerCancel } from "./callerGone.ts";
import { withNarrowIntrospection } from "./introspection.ts";
import { guardQueryPlugin } from "./plugins/guardQueryPlugin.ts";
import { operationPlugin } from "./plugins/operationPlugin.ts";

/**
 * PostGraphile over schema `sextant`, connecting as the authenticator and switching to the
 * caller's tenant role per request (pgSettings). Authentication happens in express before
 * grafserv sees the request (see server.ts), so every request here has a principal. Every
 * request is measured against `limits` before it runs (validation), and every root field
 * passes the operation gate (rate limit and audit, the same step as MCP's tools).
 */
export function createGraphql(
  pool: pg.Pool,
  logError: (id: string, e: unknown) => void,
  gate?: OperationGate,
  limits: CostLimits = DEFAULT_COST_LIMITS,
): PostGraphileInstance {
  const costRule: GraphileConfig.Plugin = {
    name: "SextantCostLimitPlugin",
    version: "0.0.0",
    grafserv: {
      middleware: {
        setPreset(next, event) {
          event.validationRules.push(costLimitRule(limits));
          return next();
        },
      },
    },
  };
  const preset: GraphileConfig.Preset = {
    extends: [PostGraphileAmberPreset],
    plugins: [guardQueryPlugin(), costRule, ...(gate ? [operationPlugin(gate, limits)] : [])],
    // Relay's `Query.query` field would clash with the `query` SQL function.
    disablePlugins: ["QueryQueryPlugin"],
    pgServices: [
      makePgService({
        // A request whose client leaves cancels its SQL (src/graphql/callerGone.ts).
        pool: withCallerCancel(withNarrowIntrospection(pool, ["sextant"])),
        schemas: ["sextant"],
        pgSettings: (requestContext) => toPgSettings(principalFromAuth(requestContext.expressv4?.req.auth), requestTraceparent(requestContext.expressv4?.req)),
      }),
    ],
    grafserv: {
      graphqlPath: "/graphql",
      graphiql: true,
      graphiqlPath: "/graphiql",
      graphiqlOnGraphQLGET: false,
      graphqlOverGET: false,
      watch: false,
      maxRequestLength: 1_000_000,
      // Same public shape as MCP and HTTP errors: known codes pass, the rest get a request id.
      maskError(error) {
        const original = error.originalError;
        if (!original) return error; // GraphQL validation errors are about the query itself
        // A variable graphql-js could not coerce ("Int cannot represent non 32-bit signed integer
        // value"): its own error about the request, with no path, not a failure while running it.
        // Only that error: any other GraphQLError without a path is masked like the rest.
        if (original.name === "GraphQLError" && !error.path && /^Variable "\$\w+" got invalid value/.test(error.message)) return error;
        const pub = toPublicError(original, logError);
        return new GraphQLError(pub.message, {
          nodes: error.nodes,
          source: error.source,
          positions: error.positions,
          path: error.path,
          extensions: { code: pub.code, ...(pub.hint ? { hint: pub.hint } : {}), ...(pub.detail ? { detail: pub.detail } : {}) },
        });
      },
    },
    grafast: {
      explain: false,
      // After PostGraphile's own context step: withPgClient is there to wrap (callerGone.ts).
      context: (requestContext, args) => ({
        principal: principalFromAuth(requestContext.expressv4?.req.auth),
        ...cancelledWithCaller(requestContext.expressv4?.res, args.contextValue as Partial<Grafast.Context>),
      }),
    },
  };
  return postgraphile(preset);
}
