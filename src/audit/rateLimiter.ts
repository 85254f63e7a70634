import { createHash } from "node:crypto";
import type pg from "pg";
import type { Principal } from "../auth/principal.ts";
import type { TenantLimitsCache } from "../auth/tenantLimits.ts";
import { SextantError } from "../db/errors.ts";
import { storableText } from "./auditLog.ts";

interface Window {
  bucket: string;
  start: number;
  lengthMs: number;
  cap: number;
  label: string;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * The principal's part of a bucket name: its name when that is short and storable as text,
 * else a hash (a JWT `sub` may hold NUL or be kilobytes long: neither may reach the table).
 */
function subjectKey(subject: string): string {
  const clean = storableText(subject, 201);
  return clean === subject && subject.length <= 200 ? subject : `#${createHash("sha256").update(subject).digest("hex")}`;
}

/** An unambiguous map key for a window, whatever characters the bucket holds. */
const windowKey = (bucket: string, start: number) => JSON.stringify([bucket, start]);

function add(m: Map<string, { bucket: string; start: number; hits: number }>, bucket: string, start: number, hits: number) {
  const key = windowKey(bucket, start);
  const cur = m.get(key);
  if (cur) cur.hits += hits;
  else m.set(key, { bucket, start, hits });
}

/**
 * Fixed-window rate limits (per principal per minute and per hour, per tenant per day) whose
 * counters live in PostgreSQL, shared by every server process. A call is checked against the
 * windows' totals as last read from PostgreSQL plus this process's calls not yet written;
 * writes go out in batches (every `intervalMs`), each returning fresh totals. So the check
 * costs no round trip, and other processes' calls are seen within one interval.
 */
export class RateLimiter {
  // Keyed by windowKey(bucket, start): a bucket holds the principal's name, which may contain
  // any character, so the key is never split apart again (a `|` in a name once crashed the server).
  private readonly totals = new Map<string, { bucket: string; start: number; hits: number }>(); // from PostgreSQL
  private readonly pending = new Map<string, { bucket: string; start: number; hits: number }>(); // this process's calls not yet written
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    private readonly limits: TenantLimitsCache,
    private readonly onError: (error: unknown) => void,
    private readonly intervalMs = 100,
  ) {}

  /**
   * Counts `calls` calls (a GraphQL request with N fields is N calls), or throws SX429 saying
   * which limit and when to retry; a refused request counts nothing.
   */
  async hit(p: Principal, calls = 1): Promise<void> {
    const l = await this.limits.get(p.tenant);
    const now = Date.now();
    const who = subjectKey(p.subject);
    const windows: Window[] = [
      { bucket: `p:${p.tenant}:${who}:minute`, start: now - (now % MINUTE), lengthMs: MINUTE, cap: l.ratePerMinute, label: "calls per minute for you" },
      { bucket: `p:${p.tenant}:${who}:hour`, start: now - (now % HOUR), lengthMs: HOUR, cap: l.ratePerHour, label: "calls per hour for you" },
      { bucket: `t:${p.tenant}:day`, start: now - (now % DAY), lengthMs: DAY, cap: l.tenantRatePerDay, label: "calls per day for your tenant" },
    ];
    for (const w of windows) {
      const key = windowKey(w.bucket, w.start);
      if ((this.totals.get(key)?.hits ?? 0) + (this.pending.get(key)?.hits ?? 0) + calls > w.cap) {
        const retry = Math.ceil((w.start + w.lengthMs - now) / 1000);
        throw new SextantError("SX429", `rate limit reached: ${w.cap} ${w.label}`,
          "Wait, or batch the work into fewer, larger queries.", `Retry after ${retry} seconds.`);
      }
    }
    for (const w of windows) add(this.pending, w.bucket, w.start, calls);
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Writes pending calls and refreshes the totals. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = [...this.pending.values()];
      this.pending.clear();
      try {
        const hits = batch.map((h) => ({ bucket: h.bucket, window_start: new Date(h.start).toISOString(), hits: h.hits }));
        const { rows } = await this.pool.query("select sextant_private.add_rate_hits($1::json) as totals", [JSON.stringify(hits)]);
        const now = Date.now();
        for (const [key, t] of this.totals) if (t.start < now - DAY) this.totals.delete(key);
        for (const t of rows[0].totals as { bucket: string; window_start: string; hits: number }[]) {
          const start = new Date(t.window_start).getTime();
          this.totals.set(windowKey(t.bucket, start), { bucket: t.bucket, start, hits: t.hits });
        }
      } catch (error) {
        const code = String((error as { code?: unknown })?.code ?? "unknown");
        if (/^(08|53|57|E)/.test(code) || code === "unknown") {
          for (const h of batch) add(this.pending, h.bucket, h.start, h.hits); // the database is away: keep them for the next try
          this.onError(new Error(`rate limits: flush failed (${code}); ${batch.length} windows kept for the next try`));
        } else {
          // Retrying what the database refused would fail forever and stop every tenant's counting.
          this.onError(new Error(`rate limits: flush failed (${code}); ${batch.length} windows dropped`));
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
