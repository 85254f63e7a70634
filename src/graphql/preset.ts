import type pg from "pg";
import { postgraphile, type PostGraphileInstance } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { GraphQLError } from "postgraphile/graphql";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import type { AuditLog } from "../audit/auditLog.ts";
import { toPgSettings } from "../auth/pgSettings.ts";
import { principalFromAuth } from "../auth/bearer.ts";
import { toPublicError } from "../db/errors.ts";
import { guardQueryPlugin } from "./plugins/guardQueryPlugin.ts";

/**
 * PostGraphile over schema `sextant`, connecting as the authenticator and switching to the
 * caller's tenant role per request (pgSettings). Authentication happens in express before
 * grafserv sees the request (see server.ts), so every request here has a principal.
 */
export function createGraphql(
  pool: pg.Pool,
  logError: (id: string, e: unknown) => void,
  audit?: AuditLog,
): PostGraphileInstance {
  const preset: GraphileConfig.Preset = {
    extends: [PostGraphileAmberPreset],
    plugins: [guardQueryPlugin(audit)],
    // Relay's `Query.query` field would clash with the `query` SQL function.
    disablePlugins: ["QueryQueryPlugin"],
    pgServices: [
      makePgService({
        pool,
        schemas: ["sextant"],
        pgSettings: (requestContext) => toPgSettings(principalFromAuth(requestContext.expressv4?.req.auth)),
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
      context: (requestContext) => ({ principal: principalFromAuth(requestContext.expressv4?.req.auth) }),
    },
  };
  return postgraphile(preset);
}
