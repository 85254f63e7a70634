import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { openEmbedded, type DatabaseHandle } from "../../src/db/embedded.ts";
import type { TestDatabase } from "./db.ts";
import { freePort } from "./ports.ts";
import { useResource, useTestServer, type TestServer } from "./setup.ts";

/** A second, real PostgreSQL (embedded, own data directory and port) playing a source's server. */
export interface RemotePg {
  port: number;
  /** Superuser URL of its `warehouse` database. */
  adminUrl: string;
  /** Runs SQL there as its superuser. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** A source URL for `user`:`password` on `warehouse`. */
  url(user: string, password: string): string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  close(): Promise<void>;
}

/** Starts the remote PostgreSQL with an empty database `warehouse`. */
export async function startRemotePg(): Promise<RemotePg> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-remote-"));
  fs.chmodSync(dataDir, 0o755);
  const port = await freePort();
  const open = () => openEmbedded({ dataDir, port, dbName: "warehouse" });
  let handle: DatabaseHandle | undefined = await open();
  const adminUrl = handle.adminUrl;
  return {
    port,
    adminUrl,
    async sql<T>(text: string, params: unknown[] = []) {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        return (await c.query(text, params)).rows as T[];
      } finally {
        await c.end();
      }
    },
    url: (user, password) => `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/warehouse`,
    async stop() {
      await handle?.close();
      handle = undefined;
    },
    async start() {
      handle ??= await open();
    },
    async close() {
      await handle?.close();
      handle = undefined;
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** What a sources test file works with (useSourceServer). */
export interface SourceTestbed {
  remote: RemotePg;
  db: TestDatabase;
  server: TestServer;
  /** Lends `fn` an admin connection of the file's database (what `sextant source …` uses). */
  withAdmin<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T>;
}

/**
 * A sources test file's world: the remote PostgreSQL, started first with `remoteSql` run there
 * as its superuser; the file's database and HTTP server (useTestServer), with `prepare` run in
 * between (add sources, set the tenant's limits) so the server starts on them; all stopped
 * after the file's tests, the remote last.
 */
export function useSourceServer(remoteSql: string, prepare?: (bed: SourceTestbed) => Promise<void>): SourceTestbed {
  const remote = useResource("the remote PostgreSQL", async () => {
    const started = await startRemotePg();
    await started.sql(remoteSql).catch(async (error) => {
      await started.close();
      throw error;
    });
    return started;
  }, (started) => started.close());
  const bed: SourceTestbed = {
    remote,
    ...useTestServer(async () => {
      await prepare?.(bed);
      return {};
    }),
    async withAdmin(fn) {
      const c = await bed.db.admin.connect();
      try {
        return await fn(c);
      } finally {
        c.release();
      }
    },
  };
  return bed;
}
