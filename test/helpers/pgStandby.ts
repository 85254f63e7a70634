import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { asPostgres, PG15_BIN, postmaster, type Pg15 } from "./pg15.ts";
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
  const flags = { listen_addresses: "127.0.0.1", port: String(port), unix_socket_directories: "", hot_standby: "on", fsync: "off", max_connections: "100" };
  const { start, stop } = postmaster(dataDir, flags, () => url(primary.adminUrl), "the standby");
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
