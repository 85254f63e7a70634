import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { PG15_BIN, type Pg15 } from "./pg15.ts";
import { freePort } from "./ports.ts";

export interface Standby {
  port: number;
  /** `primaryUrl` pointed at the standby (same users and passwords: physical replication). */
  url(primaryUrl: string): string;
  /** Runs SQL on the standby as the superuser. */
  sql<T = Record<string, unknown>>(text: string, db?: string): Promise<T[]>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;
const asPostgres = (cmd: string, args: string[]) => (isRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] as const : [cmd, args] as const);

/**
 * A hot standby of `primary` (helpers/pg15.ts), made the way an operator would: pg_basebackup
 * with -R (standby.signal + primary_conninfo), streaming from the primary, on its own port.
 */
export async function startStandby(primary: Pg15): Promise<Standby> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-standby-"));
  fs.chmodSync(dir, 0o755);
  if (isRoot) spawnSync("chown", ["postgres:", dir]);
  const dataDir = path.join(dir, "data");
  const admin = new URL(primary.adminUrl);
  const [cmd, args] = asPostgres("env", [`PGPASSWORD=${decodeURIComponent(admin.password)}`, path.join(PG15_BIN, "pg_basebackup"),
    "-D", dataDir, "-h", "127.0.0.1", "-p", String(primary.port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync"]);
  const backup = spawnSync(cmd, args, { encoding: "utf8" });
  if (backup.status !== 0) throw new Error(`pg_basebackup failed: ${backup.stderr || backup.stdout}`);
  const port = await freePort();
  const url = (primaryUrl: string) => {
    const u = new URL(primaryUrl);
    u.port = String(port);
    return u.toString();
  };
  let child: ChildProcess | undefined;
  const pid = () => {
    try {
      return Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]) || undefined;
    } catch {
      return undefined;
    }
  };
  const killOnExit = () => {
    const p = pid();
    if (p) try { process.kill(p, "SIGINT"); } catch { /* gone */ }
  };
  const start = async () => {
    if (child) return;
    const flags = { listen_addresses: "127.0.0.1", port: String(port), unix_socket_directories: "", hot_standby: "on", fsync: "off", max_connections: "100" };
    const [c, a] = asPostgres(path.join(PG15_BIN, "postgres"), ["-D", dataDir, ...Object.entries(flags).flatMap(([k, v]) => ["-c", `${k}=${v}`])]);
    let log = "";
    const proc = spawn(c, a, { stdio: ["ignore", "ignore", "pipe"] });
    proc.stderr!.on("data", (d) => (log = (log + d).slice(-4000)));
    child = proc;
    proc.once("exit", () => { if (child === proc) child = undefined; });
    process.on("exit", killOnExit);
    for (const deadline = Date.now() + 30_000; ;) {
      const client = new pg.Client({ connectionString: url(primary.adminUrl) });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (error) {
        await client.end().catch(() => {});
        if (!child || Date.now() > deadline) throw new Error(`the standby did not start: ${String(error)}\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = async () => {
    const proc = child;
    if (!proc) return;
    process.removeListener("exit", killOnExit);
    const exited = new Promise((r) => proc.once("exit", r));
    const p = pid();
    if (p) process.kill(p, "SIGINT");
    else proc.kill("SIGINT");
    await exited;
  };
  await start();
  return {
    port,
    url,
    async sql<T>(text: string, db = "postgres") {
      const u = new URL(url(primary.adminUrl));
      u.pathname = `/${db}`;
      const client = new pg.Client({ connectionString: u.toString() });
      await client.connect();
      try {
        return (await client.query(text)).rows as T[];
      } finally {
        await client.end();
      }
    },
    stop,
    start,
    async close() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
