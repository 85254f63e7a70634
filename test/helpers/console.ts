import type { Browser } from "playwright-core";
import { launchChromium } from "../console/browser.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";
import { freePort } from "./ports.ts";
import { startTestServer } from "./server.ts";

/** One test file's console setup: a database, a server at a known public URL, and Chromium. */
export interface ConsoleStack {
  db: TestDatabase;
  server: Awaited<ReturnType<typeof startTestServer>>;
  /** The server's public URL (SEXTANT_PUBLIC_URL): the console checks Origin against it. */
  base: string;
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Starts what the console's browser tests share, Chromium alongside the database and server
 * rather than after them; the suites of test/console/ run on one stack per process (see
 * console.test.ts) instead of each starting its own.
 */
export async function startConsoleStack(env: Record<string, string> = {}): Promise<ConsoleStack> {
  const browserStarting = launchChromium();
  browserStarting.catch(() => {}); // awaited below; a failure is reported there
  let db: TestDatabase | undefined;
  let server: ConsoleStack["server"] | undefined;
  try {
    db = await createTestDatabase();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = await startTestServer(db, { PORT: String(port), SEXTANT_PUBLIC_URL: base, ...env });
    const browser = await browserStarting;
    const started = { db, server, browser };
    return {
      ...started, base,
      async close() {
        await started.browser.close().catch(() => {});
        await started.server.close();
        await started.db.drop();
      },
    };
  } catch (error) {
    await browserStarting.then((b) => b.close()).catch(() => {});
    await server?.close().catch(() => {});
    await db?.drop().catch(() => {});
    throw error;
  }
}
