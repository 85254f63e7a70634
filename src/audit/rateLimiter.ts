import { createHash } from "node:crypto";
import pg from "pg";
import type { Principal } from "../auth/principal.ts";
import type { Admission } from "../db/queryAsRole.ts";
import { storableText } from "./auditLog.ts";

/**
 * The principal's part of a bucket name: its name when that is short and storable as text,
 * else a hash (a JWT `sub` may hold NUL or be kilobytes long: neither may reach the table).
 */
function subjectKey(subject: string): string {
  const clean = storableText(subject, 201);
  return clean === subject && subject.length <= 200 ? subject : `#${createHash("sha256").update(subject).digest("hex")}`;
}

/**
 * Leases: a principal calling fast (at least LEASE_AFTER calls in the last RATE_MS, or so far in
 * this one) has as many calls counted at once (at most LEASE_MAX), and its next calls in this process use them without a
 * statement of their own. Under 16 clients of one principal, admission was a third of
 * PostgreSQL's time per call, most of it waiting on the same three counter rows. A lease lasts
 * at most LEASE_MS and never past the minute it was counted in; what it did not use is given
 * back (sextant_private.return_calls). A slow caller is counted call by call, as before.
 */
const RATE_MS = 250;
const LEASE_AFTER = 8;
const LEASE_MAX = 64;
const LEASE_MS = 1000;
/** A lease ends this long before its minute does, so a call never uses it in the next minute. */
const MINUTE_MARGIN_MS = 50;

interface Lease { left: number; until: number; countedAt: Date }

/** One principal's calls in this process: its rate and its lease. */
interface Caller {
  /** The tenant and bucket key as quoted SQL arguments, `'acme', 'agent'` (every count names both). */
  args: string;
  windowStart: number;
  windowCalls: number;
  lastWindowCalls: number;
  lease?: Lease;
  leasing?: Promise<boolean>;
  /** No lease is asked for before this (one was refused or failed). */
  noLeaseUntil?: number;
}

/**
 * Fixed-window rate limits (per principal per minute and per hour, per tenant per day) counted
 * at admission in PostgreSQL (sextant_private.lease_calls), so every server process shares them
 * and replicas together admit no more than the limit. The count commits on its own, before the
 * call's transaction (which a read rolls back), without waiting for the WAL flush: a crash may
 * forget the last counts, never add any. A tool call sends it in the same round trip as its
 * own SQL (`admission`, src/db/queryAsRole.ts); other doors call `hit`, one round trip. A fast
 * caller's calls are counted ahead, a lease at a time (above).
 *
 * What leases change: calls leased and not yet used count as used, for up to about two seconds
 * (a lease's second, then the sweeper's), in this process only; so near a cap another server may refuse a call that this one could still
 * admit. Never more than the limit is admitted.
 */
export class RateLimiter {
  private readonly callers = new Map<string, Caller>();
  private readonly sweeper: NodeJS.Timeout;
  private returning = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly pool: pg.Pool) {
    // Leases that ran out with calls left are given back; callers idle for a while forgotten.
    this.sweeper = setInterval(() => this.sweep(performance.now()), LEASE_MS).unref();
  }

  /**
   * The admission of `calls` calls as one simple-protocol text (values quoted): it counts, or
   * raises SX429 leaving the connection in a failed transaction (the caller rolls back).
   */
  sql(p: Principal, calls = 1): string {
    return this.admitSql(this.callerOf(p), calls);
  }

  private admitSql(caller: Caller, calls: number): string {
    return this.countSql(`sextant_private.admit_calls(${caller.args}, ${Math.max(1, Math.floor(calls))})`);
  }

  /** A counting statement in its own transaction; synchronous_commit is read at the commit: set with the count. */
  private countSql(call: string): string {
    return `begin; select pg_catalog.set_config('synchronous_commit', 'off', true), ${call}; commit`;
  }

  /**
   * One call's admission: nothing to send (undefined) when a lease covers it, else the count to
   * send with the call's own SQL (or `alone`). Refusals (SX429) come from the count.
   */
  async admission(p: Principal): Promise<Admission | undefined> {
    const caller = this.callerOf(p);
    const now = performance.now();
    if (now - caller.windowStart >= RATE_MS) {
      caller.lastWindowCalls = now - caller.windowStart < 2 * RATE_MS ? caller.windowCalls : 0;
      caller.windowStart = now;
      caller.windowCalls = 0;
    }
    caller.windowCalls++;
    // Calls before this one in the last window, or in this one so far: a burst is seen at once.
    const recent = Math.max(caller.lastWindowCalls, caller.windowCalls - 1);
    for (;;) {
      const lease = caller.lease;
      if (lease && lease.left > 0 && performance.now() < lease.until) {
        lease.left--;
        return undefined;
      }
      if (lease) void this.giveBack(caller);
      if (caller.leasing) {
        if (await caller.leasing) continue;
        break; // the lease was refused or failed: this call is counted alone, which says why
      }
      if (recent < LEASE_AFTER || this.closed || now < (caller.noLeaseUntil ?? 0)) break;
      caller.leasing = this.lease(caller, Math.min(LEASE_MAX, recent))
        .finally(() => (caller.leasing = undefined));
    }
    const sql = this.admitSql(caller, 1);
    return { sql, alone: () => this.send(sql).then(() => {}) };
  }

  /**
   * Counts `calls` calls (a GraphQL request with N fields is N calls), or throws SX429 saying
   * which limit and when to retry; a refused request counts nothing.
   */
  async hit(p: Principal, calls = 1): Promise<void> {
    await this.send(this.sql(p, calls));
  }

  /** Gives back what leases have left (a server stopping); later calls are counted one by one. */
  async close(): Promise<void> {
    // No lease after this (calls still running are counted one by one), and none left out.
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.all([...this.callers.values()].map((c) => c.leasing));
    for (const caller of this.callers.values()) if (caller.lease) void this.giveBack(caller);
    await Promise.all(this.returning);
  }

  private callerOf(p: Principal): Caller {
    const who = subjectKey(p.subject);
    const key = `${p.tenant}\u0000${who}`;
    let caller = this.callers.get(key);
    if (!caller) {
      caller = { args: `${pg.escapeLiteral(p.tenant)}, ${pg.escapeLiteral(who)}`, windowStart: performance.now(), windowCalls: 0, lastWindowCalls: 0 };
      this.callers.set(key, caller);
    }
    return caller;
  }

  /** Leases up to `wanted` calls; false when none could be (over a limit, or PostgreSQL failing). */
  private async lease(caller: Caller, wanted: number): Promise<boolean> {
    // Timed from the asking: the count's now() comes after it, so a lease timed from here ends
    // before its minute does however long the count waited (on the rows' locks: timed from the
    // answer, calls were used past the minute they were counted in, uncounted in the next).
    const asked = performance.now();
    try {
      const results = await this.send(this.countSql(
        `* from sextant_private.lease_calls(${caller.args}, ${wanted}, 1)`));
      const { granted, counted_at: countedAt } = results[1]!.rows[0] as { granted: number; counted_at: Date };
      const minuteLeft = 60_000 - (countedAt.getTime() % 60_000) - MINUTE_MARGIN_MS;
      caller.lease = { left: granted, until: asked + Math.min(LEASE_MS, minuteLeft), countedAt };
      if (!this.closed && performance.now() < caller.lease.until) return true;
      // Over before it came (a long wait, the end of a minute) or the limiter closed: given back
      // first, so the call counted alone finds the room again.
      await this.giveBack(caller);
      return false;
    } catch {
      // Refused (SX429: the call counted alone is too) or PostgreSQL failing: the caller's next
      // calls are counted alone for a while, not each asked for a lease first (two statements).
      caller.noLeaseUntil = performance.now() + RATE_MS;
      return false;
    }
  }

  /** Uncounts what the caller's lease did not use (best effort: a failure leaves them counted). */
  private giveBack(caller: Caller): Promise<void> {
    const lease = caller.lease!;
    caller.lease = undefined;
    if (lease.left <= 0) return Promise.resolve();
    const done: Promise<void> = this.send(this.countSql(
      `sextant_private.return_calls(${caller.args}, ${lease.left}, ${pg.escapeLiteral(lease.countedAt.toISOString())})`))
      .then(() => {}, () => {})
      .finally(() => this.returning.delete(done));
    this.returning.add(done);
    return done;
  }

  private sweep(now: number): void {
    for (const [key, caller] of this.callers) {
      if (caller.lease && now >= caller.lease.until) void this.giveBack(caller);
      if (!caller.lease && !caller.leasing && now - caller.windowStart > 10 * LEASE_MS) this.callers.delete(key);
    }
  }

  private async send(text: string): Promise<pg.QueryResult[]> {
    const client = await this.pool.connect();
    let results: pg.QueryResult[];
    try {
      results = (await client.query(text)) as unknown as pg.QueryResult[];
    } catch (error) {
      await client.query("rollback").then(() => client.release(), (e: Error) => client.release(e));
      throw error;
    }
    client.release();
    return Array.isArray(results) ? results : [results];
  }
}
