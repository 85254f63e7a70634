/**
 * The bench's own PostgreSQL, in a temporary folder: Debian's PostgreSQL 15 when it is
 * installed (a user's database is rarely the newest), else a second embedded PostgreSQL 18.
 * Trust authentication on 127.0.0.1 only; the whole folder is removed on stop.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "../test/helpers/ports.ts";

const PG15 = "/usr/lib/postgresql/15/bin";

export interface Cluster {
  url: string;
  server: string;
  stop(): Promise<void>;
}

async function waitUntilUp(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const c = new pg.Client({ connectionString: url });
    c.on("error", () => {});
    try {
      await c.connect();
      await c.end();
      return;
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function startPg15(dir: string): Promise<Cluster> {
  const data = path.join(dir, "data");
  const root = process.getuid?.() === 0;
  if (root) spawnSync("chown", ["-R", "postgres:postgres", dir]);
  // initdb and postgres refuse to run as root: as root they run as the postgres OS user.
  const as = (cmd: string, args: string[]) => (root ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args]) as [string, string[]];
  const init = spawnSync(...as(path.join(PG15, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]), { encoding: "utf8" });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const child = spawn(...as(path.join(PG15, "postgres"), ["-D", data, "-p", String(port), "-c", "listen_addresses=127.0.0.1",
    "-c", `unix_socket_directories=${dir}`, "-c", "shared_buffers=128MB", "-c", "fsync=off", "-c", "max_connections=200",
    "-c", "shared_preload_libraries=pg_stat_statements"]), { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d) => (log = (log + String(d)).slice(-4000)));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await waitUntilUp(url, 30_000);
  } catch (e) {
    child.kill("SIGINT");
    throw new Error(`PostgreSQL 15 did not start: ${(e as Error).message}\n${log}`);
  }
  return {
    url,
    server: "PostgreSQL 15 (Debian)",
    async stop() {
      const pid = Number(fs.readFileSync(path.join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(pid, "SIGINT"); // fast shutdown
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startEmbedded18(dir: string): Promise<Cluster> {
  const { openEmbedded } = await import("../src/db/embedded.ts");
  const db = await openEmbedded({ dataDir: dir, port: await freePort(), dbName: "postgres" });
  return {
    url: db.adminUrl,
    server: "PostgreSQL 18 (embedded)",
    async stop() {
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts the bench's PostgreSQL; BENCH_PG=18 forces the embedded one. */
export async function startCluster(): Promise<Cluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-peer-bench-"));
  fs.chmodSync(dir, 0o755);
  const want15 = process.env.BENCH_PG !== "18" && fs.existsSync(path.join(PG15, "postgres"));
  return want15 ? startPg15(dir) : startEmbedded18(dir);
}

/** A database URL with another database name. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
