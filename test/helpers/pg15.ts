import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "./ports.ts";

/**
 * Debian's PostgreSQL 15 (package postgresql-15), the "user's own database" of issue 14: a
 * cluster of its own in a temp dir, on a free loopback port, stopped and removed by close().
 *
 *   if (PG15_MISSING) test.skip(PG15_MISSING) …
 *   const pg15 = await startPg15();            // superuser `postgres`, database `postgres`
 *   await pg15.sql("create database shop");    // as the superuser, one statement or a script
 *   const url = pg15.url("shop");              // or pg15.url("shop", "role", "password")
 *   await pg15.close();
 *
 * Locally the tests skip with PG15_MISSING when the binaries are not installed; CI installs them
 * (.ci/run). As root, initdb and postgres run as the `postgres` OS user (they refuse root).
 */
export const PG15_BIN = process.env.SEXTANT_PG15_BIN ?? "/usr/lib/postgresql/15/bin";

/** Why PostgreSQL 15 cannot run here (a sentence for test.skip), or undefined when it can. */
export const PG15_MISSING: string | undefined = fs.existsSync(path.join(PG15_BIN, "postgres"))
  ? undefined
  : `Debian's PostgreSQL 15 is not installed (${PG15_BIN}/postgres missing): apt-get install postgresql-15`;

export interface Pg15 {
  port: number;
  /** Server version, e.g. "15.18". */
  version: string;
  /** Superuser URL of database `db` (default postgres), or `user`:`password` on it. */
  url(db?: string, user?: string, password?: string): string;
  /** Superuser URL of the postgres database. */
  adminUrl: string;
  /** Runs SQL (one statement, or several without parameters) as the superuser on `db`. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[], db?: string): Promise<T[]>;
  /** Stops the server (fast shutdown: sessions are ended); start() brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  close(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;
/** A command as the postgres OS user when we are root (initdb/postgres refuse root). */
export const asPostgres = (cmd: string, args: string[]) => (isRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] as const : [cmd, args] as const);

/** Starts a fresh PostgreSQL 15 cluster (throws PG15_MISSING's text when it is not installed). */
export async function startPg15(opts: { settings?: Record<string, string> } = {}): Promise<Pg15> {
  if (PG15_MISSING) throw new Error(PG15_MISSING);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-pg15-"));
  fs.chmodSync(dir, 0o755);
  const dataDir = path.join(dir, "data");
  const password = randomBytes(18).toString("base64url");
  fs.writeFileSync(path.join(dir, "pw"), password, { mode: 0o600 });
  if (isRoot) spawnSync("chown", ["-R", "postgres:", dir]);
  const [initCmd, initArgs] = asPostgres(path.join(PG15_BIN, "initdb"), [
    "-D", dataDir, "-U", "postgres", "--pwfile", path.join(dir, "pw"), "-A", "scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
  ]);
  const init = spawnSync(initCmd, initArgs, { encoding: "utf8" });
  if (init.status !== 0) throw new Error(`initdb (PostgreSQL 15) failed: ${init.stderr || init.stdout}`);
  fs.rmSync(path.join(dir, "pw"));
  const port = await freePort();
  const flags = { listen_addresses: "127.0.0.1", port: String(port), unix_socket_directories: "", max_connections: "100", fsync: "off", ...opts.settings };
  const url = (db = "postgres", user = "postgres", pw = password) => `postgres://${user}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${db}`;

  const { start, stop } = postmaster(dataDir, flags, url, "PostgreSQL 15");
  await start();
  const sql = async <T,>(text: string, params: unknown[] = [], db = "postgres") => {
    const c = new pg.Client({ connectionString: url(db) });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as T[];
    } finally {
      await c.end();
    }
  };
  const version = (await sql<{ server_version: string }>("show server_version"))[0]!.server_version;
  return {
    port,
    version: version.split(" ")[0]!,
    url,
    adminUrl: url(),
    sql,
    stop,
    start,
    async close() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The `postgres` process of a data directory (PostgreSQL 15's binaries, as the postgres OS user
 * when we are root): start() spawns it with `flags` and resolves once `connectUrl()` accepts a
 * connection (30 s, else the error carries its log); stop() is a fast shutdown of the
 * postmaster itself. A test process that ends without stop() still stops it.
 */
export function postmaster(dataDir: string, flags: Record<string, string>, connectUrl: () => string, what: string): { start(): Promise<void>; stop(): Promise<void> } {
  let child: ChildProcess | undefined;
  // A signal can still be sent from 'exit'.
  const killOnExit = () => {
    const pid = postmasterPid(dataDir);
    if (pid) try { process.kill(pid, "SIGINT"); } catch { /* already gone */ }
  };
  const start = async () => {
    if (child) return;
    const [cmd, args] = asPostgres(path.join(PG15_BIN, "postgres"), ["-D", dataDir, ...Object.entries(flags).flatMap(([k, v]) => ["-c", `${k}=${v}`])]);
    let log = "";
    const proc = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    proc.stderr!.on("data", (d) => { log = (log + d).slice(-4000); });
    child = proc;
    proc.once("exit", () => { if (child === proc) child = undefined; });
    process.on("exit", killOnExit);
    for (const deadline = Date.now() + 30_000; ; ) {
      const c = new pg.Client({ connectionString: connectUrl() });
      try {
        await c.connect();
        await c.end();
        return;
      } catch (error) {
        await c.end().catch(() => {});
        if (!child || Date.now() > deadline) throw new Error(`${what} did not start on port ${flags.port}: ${String(error)}\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = async () => {
    const proc = child;
    if (!proc) return;
    process.removeListener("exit", killOnExit);
    const exited = new Promise((r) => proc.once("exit", r));
    // Signal the postmaster itself (runuser does not forward signals to it): SIGINT = fast shutdown.
    const pid = postmasterPid(dataDir);
    if (pid) process.kill(pid, "SIGINT");
    else proc.kill("SIGINT");
    await exited;
  };
  return { start, stop };
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
