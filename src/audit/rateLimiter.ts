import { createHash } from "node:crypto";
import pg from "pg";
import type { Principal } from "../auth/principal.ts";
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
 * Fixed-window rate limits (per principal per minute and per hour, per tenant per day) counted
 * at admission in PostgreSQL (sextant_private.admit_calls), so every server process shares them
 * and replicas together admit no more than the limit. The count commits on its own, before the
 * call's transaction (which a read rolls back), without waiting for the WAL flush: a crash may
 * forget the last counts, never add any. A tool call sends it in the same round trip as its
 * own SQL (`sql`, src/db/queryAsRole.ts); other doors call `hit`, one round trip.
 */
export class RateLimiter {
  /** The caps are read in SQL and nothing is batched, so nothing is pending and nothing fails later. */
  constructor(private readonly pool: pg.Pool) {}

  /**
   * The admission of `calls` calls as one simple-protocol text (values quoted): it counts, or
   * raises SX429 leaving the connection in a failed transaction (the caller rolls back).
   */
  sql(p: Principal, calls = 1): string {
    const n = Math.max(1, Math.floor(calls));
    // synchronous_commit is read at the commit: set with the count, one statement fewer than `set local`.
    return `begin; select pg_catalog.set_config('synchronous_commit', 'off', true), sextant_private.admit_calls(${pg.escapeLiteral(p.tenant)}, ${pg.escapeLiteral(subjectKey(p.subject))}, ${n}); commit`;
  }

  /**
   * Counts `calls` calls (a GraphQL request with N fields is N calls), or throws SX429 saying
   * which limit and when to retry; a refused request counts nothing.
   */
  async hit(p: Principal, calls = 1): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query(this.sql(p, calls));
    } catch (error) {
      await client.query("rollback").then(() => client.release(), (e: Error) => client.release(e));
      throw error;
    }
    client.release();
  }
}
