import type http from "node:http";
import type express from "express";
import type pg from "pg";
import type { PostGraphileInstance } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/express/v4";
import type { OperationGate } from "../audit/operation.ts";
import type { CostLimits } from "./cost.ts";
import { createGraphql } from "./preset.ts";

/**
 * PostGraphile's routes (/graphql, /graphiql) on `router`. The server imports this module only
 * once it listens: PostGraphile is the largest thing Sextant loads (about half a second of
 * module loading), and /mcp, the console and /ready need none of it.
 */
export async function mountGraphql(
  router: express.Router,
  server: http.Server,
  pool: pg.Pool,
  logError: (id: string, e: unknown) => void,
  gate: OperationGate,
  limits: CostLimits,
): Promise<PostGraphileInstance> {
  const pgl = createGraphql(pool, logError, gate, limits);
  await pgl.createServ(grafserv).addTo(router as unknown as express.Express, server, false);
  return pgl;
}
