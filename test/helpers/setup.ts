import type { Logger } from "pino";
import { afterAll, beforeAll } from "vitest";
import { createTestDatabase, type TestDatabase } from "./db.ts";
import { startTestServer } from "./server.ts";

export type TestServer = Awaited<ReturnType<typeof startTestServer>>;

/**
 * A value the file creates in beforeAll but names as a constant at the top: property reads go
 * to the value once it exists (methods stay bound to it); a read before then throws, naming it.
 */
export function lateBound<T extends object>(what: string): { handle: T; set(value: T | undefined): void } {
  let current: T | undefined;
  const handle = new Proxy({} as T, {
    get(_target, prop) {
      if (!current) throw new Error(`${what} is used before beforeAll created it`);
      const value = Reflect.get(current, prop, current);
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
  return { handle, set: (value) => void (current = value) };
}

/**
 * Something the file starts in beforeAll and stops after its tests, named as a constant at the
 * top (lateBound). Hooks registered later run after `start` and before `stop`.
 */
export function useResource<T extends object>(what: string, start: () => Promise<T>, stop: (value: T) => Promise<unknown>): T {
  const value = lateBound<T>(what);
  let started: T | undefined;
  beforeAll(async () => {
    started = await start();
    value.set(started);
  });
  afterAll(async () => {
    if (started) await stop(started);
  });
  return value.handle;
}

/**
 * The file's own database, cloned from the migrated template before its tests and dropped
 * after them (register it first: later afterAll hooks run before the drop).
 */
export function useTestDatabase(): TestDatabase {
  return useResource("the test database", createTestDatabase, (db) => db.drop());
}

type ServerEnv = Record<string, string> | (() => Promise<Record<string, string>>);

/**
 * A real HTTP server on `db`, started in beforeAll and closed after the file's tests (`env`:
 * extra settings, or a function that makes them in beforeAll, e.g. once a port or a stand-in
 * model exists: register what it needs first). A file may start several, each with its env.
 */
export function useServer(db: TestDatabase, env: ServerEnv = {}, log?: Logger): TestServer {
  return useResource("the test server", async () => startTestServer(db, typeof env === "function" ? await env() : env, log), (server) => server.close());
}

/** The file's own database and a real HTTP server on it (useTestDatabase + useServer). */
export function useTestServer(env: ServerEnv = {}, log?: Logger): { db: TestDatabase; server: TestServer } {
  const db = useTestDatabase();
  return { db, server: useServer(db, env, log) };
}
