import pino, { type Logger } from "pino";
import { loadConfig, type Config } from "../../src/config.ts";
import { startServer, type RunningServer } from "../../src/server.ts";
import type { TestDatabase } from "./db.ts";

export const JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789";
export const JWT_AUDIENCE = "https://sextant.test";
export const JWT_ISSUER = "https://issuer.test";

/** A real HTTP server on a free port, against the test file's database (silent unless given a logger). */
export async function startTestServer(db: TestDatabase, env: Record<string, string> = {}, log: Logger = pino({ level: "silent" })): Promise<RunningServer & { config: Config }> {
  const config = loadConfig({
    DATABASE_URL: db.adminUrl,
    PORT: "0",
    SEXTANT_JWT_SECRET: JWT_SECRET,
    SEXTANT_JWT_AUDIENCE: JWT_AUDIENCE,
    SEXTANT_JWT_ISSUER: JWT_ISSUER,
    ...env,
  });
  const server = await startServer({ config, pool: db.auth, log, port: env.PORT ? Number(env.PORT) : 0 });
  return { ...server, config };
}
