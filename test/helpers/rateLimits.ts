import type { TestDatabase } from "./db.ts";

/** Not after second `lastSecond` of a UTC minute: what a test counts must fall in one minute window. */
export async function earlyInAMinute(lastSecond = 45): Promise<void> {
  while (new Date().getUTCSeconds() > lastSecond) await new Promise((r) => setTimeout(r, 500));
}

/** Runs `fn` with tenant acme's per-minute cap at `cap`, then puts back the default (120). */
export async function withMinuteCap<T>(db: TestDatabase, cap: number, fn: () => Promise<T>): Promise<T> {
  await db.admin.query("update sextant.tenants set rate_per_minute = $1 where slug = 'acme'", [cap]);
  try {
    return await fn();
  } finally {
    await db.admin.query("update sextant.tenants set rate_per_minute = 120 where slug = 'acme'");
  }
}
