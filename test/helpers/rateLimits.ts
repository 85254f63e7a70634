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

/**
 * Runs `fn` while another session holds the lock on acme's `subject`'s row of the current
 * minute window (sextant_private.rate_buckets), so an admission of that subject waits on it;
 * `unlock` ends that session's transaction (at the latest when `fn` ends).
 */
export async function withMinuteRowLocked<T>(db: TestDatabase, subject: string, fn: (unlock: () => Promise<void>) => Promise<T>): Promise<T> {
  const holder = await db.admin.connect();
  try {
    await holder.query("begin");
    await holder.query("select 1 from sextant_private.rate_buckets where bucket = $1 and window_start = date_trunc('minute', now(), 'UTC') for update",
      [`p:acme:${subject}:minute`]);
    return await fn(async () => void (await holder.query("commit")));
  } finally {
    await holder.query("rollback").catch(() => {});
    holder.release();
  }
}
