import type pg from "pg";
import type { Principal } from "../auth/principal.ts";
import type { TenantLimitsCache } from "../auth/tenantLimits.ts";
import { SextantError } from "../db/errors.ts";

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
 * Fixed-window rate limits (per principal per minute and per hour, per tenant per day) whose
 * counters live in PostgreSQL, shared by every server process. A call is checked against the
 * windows' totals as last read from PostgreSQL plus this process's calls not yet written;
 * writes go out in batches (every `intervalMs`), each returning fresh totals. So the check
 * costs no round trip, and other processes' calls are seen within one interval.
 */
export class RateLimiter {
  private readonly totals = new Map<string, number>(); // key: bucket|start, from PostgreSQL
  private readonly pending = new Map<string, number>(); // this process's calls not yet written
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    private readonly limits: TenantLimitsCache,
    private readonly onError: (error: unknown) => void,
    private readonly intervalMs = 100,
  ) {}

  /** Counts one call, or throws SX429 saying which limit and when to retry. */
  async hit(p: Principal): Promise<void> {
    const l = await this.limits.get(p.tenant);
    const now = Date.now();
    const windows: Window[] = [
      { bucket: `p:${p.tenant}:${p.subject}:minute`, start: now - (now % MINUTE), lengthMs: MINUTE, cap: l.ratePerMinute, label: "per minute for you" },
      { bucket: `p:${p.tenant}:${p.subject}:hour`, start: now - (now % HOUR), lengthMs: HOUR, cap: l.ratePerHour, label: "per hour for you" },
      { bucket: `t:${p.tenant}:day`, start: now - (now % DAY), lengthMs: DAY, cap: l.tenantRatePerDay, label: "per day for your tenant" },
    ];
    for (const w of windows) {
      const key = `${w.bucket}|${w.start}`;
      if ((this.totals.get(key) ?? 0) + (this.pending.get(key) ?? 0) + 1 > w.cap) {
        const retry = Math.ceil((w.start + w.lengthMs - now) / 1000);
        throw new SextantError("SX429", `rate limit reached: ${w.cap} calls ${w.label}`,
          "Wait, or batch the work into fewer, larger queries.", `Retry after ${retry} seconds.`);
      }
    }
    for (const w of windows) {
      const key = `${w.bucket}|${w.start}`;
      this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    }
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Writes pending calls and refreshes the totals. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = [...this.pending.entries()];
      this.pending.clear();
      const hits = batch.map(([key, n]) => {
        const [bucket, start] = key.split("|") as [string, string];
        return { bucket, window_start: new Date(Number(start)).toISOString(), hits: n };
      });
      try {
        const { rows } = await this.pool.query("select sextant_private.add_rate_hits($1::json) as totals", [JSON.stringify(hits)]);
        const now = Date.now();
        for (const key of this.totals.keys()) if (Number(key.split("|")[1]) < now - DAY) this.totals.delete(key);
        for (const t of rows[0].totals as { bucket: string; window_start: string; hits: number }[]) {
          this.totals.set(`${t.bucket}|${new Date(t.window_start).getTime()}`, t.hits);
        }
      } catch (error) {
        for (const [key, n] of batch) this.pending.set(key, (this.pending.get(key) ?? 0) + n); // keep them for the next try
        this.onError(error);
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
