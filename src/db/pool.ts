import pg from "pg";
import "./pgTypes.ts";

/** A pg Pool whose idle-connection errors are logged instead of crashing the process. */
export function createPool(connectionString: string, max = 10, onError?: (e: Error) => void, options: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, ...options });
  // Only message and code: a pg error carries its client, which has no place in a log.
  pool.on("error", (e) => onError?.(Object.assign(new Error(e.message), { code: (e as { code?: string }).code })));
  return pool;
}

/**
 * `readUrl` (a streaming standby: where it is, and TLS options) with the credentials of
 * `loginUrl` (the authenticator's): physical replication copies roles and passwords, so the
 * standby knows the same login, and the same role switching works there.
 */
export function standbyUrl(readUrl: string, loginUrl: string): string {
  const url = new URL(readUrl);
  const login = new URL(loginUrl);
  url.username = login.username;
  url.password = login.password;
  return url.toString();
}

/** Errors that say the standby itself is unusable (gone, restarting, or cancelled by replay), not the query. */
export function isStandbyFailure(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") return true; // socket errors, connect timeouts
  if (code === "57014") return false; // the statement timeout: the query's own doing, not the standby's
  return /^(08|53|57)/.test(code) || code === "40001" || code.startsWith("E");
}

/**
 * Sends read-only calls to a streaming standby while it is up and its replay lag is within
 * `maxLagMs`, checked every `checkMs` in the background; otherwise, and for a while after a
 * principal wrote something (so they read their own writes), to the primary.
 */
export class ReadReplica {
  private healthy = false;
  private lagMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly wroteAt = new Map<string, number>();
  private closed = false;

  constructor(
    readonly pool: pg.Pool,
    private readonly maxLagMs: number,
    private readonly onRoute?: (target: "read" | "fallback") => void,
    private readonly checkMs = Math.min(1000, Math.max(100, Math.floor(maxLagMs / 2))),
  ) {
    void this.check();
  }

  /** Measures the standby: in recovery, and how far replay is behind what it received. */
  check(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.checking ??= (async () => {
      try {
        // Caught up when everything received is replayed (an idle primary makes the replay
        // timestamp look old without any lag); otherwise the age of the last replayed commit.
        const { rows } = await this.pool.query(`select pg_is_in_recovery() as standby,
          case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
               else coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000, 0) end as lag_ms`);
        this.lagMs = Number(rows[0].lag_ms);
        this.healthy = rows[0].standby === true && this.lagMs <= this.maxLagMs;
      } catch {
        this.healthy = false;
        this.lagMs = undefined;
      } finally {
        this.checking = undefined;
        clearTimeout(this.timer);
        if (!this.closed) {
          this.timer = setTimeout(() => void this.check(), this.checkMs);
          this.timer.unref();
        }
      }
    })();
    return this.checking;
  }

  /** The standby's state as last measured (for /health and tests). */
  state(): { healthy: boolean; lagMs: number | undefined } {
    return { healthy: this.healthy, lagMs: this.lagMs };
  }

  /** Where `who`'s read goes now: the standby, or undefined for the primary. */
  pick(who: string): pg.Pool | undefined {
    const wrote = this.wroteAt.get(who);
    if (wrote !== undefined && Date.now() - wrote <= this.maxLagMs) return undefined;
    if (wrote !== undefined) this.wroteAt.delete(who);
    this.onRoute?.(this.healthy ? "read" : "fallback");
    return this.healthy ? this.pool : undefined;
  }

  /** `who` wrote on the primary: their reads stay there until the standby has surely caught up. */
  wrote(who: string): void {
    if (this.wroteAt.size >= 10_000) this.wroteAt.clear(); // bounded; the worst case is a stale read
    this.wroteAt.set(who, Date.now());
  }

  /** The standby failed a call: stop using it until the next check says otherwise. */
  failed(): void {
    this.healthy = false;
    void this.check();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.checking;
    await this.pool.end();
  }
}

const replicas = new WeakMap<pg.Pool, ReadReplica>();

/** Read-only calls made through `primary` (queryAsRole) may go to `replica` from now on. */
export function attachReadReplica(primary: pg.Pool, replica: ReadReplica): void {
  replicas.set(primary, replica);
}

/** The standby attached to `primary`, if any. */
export function readReplicaOf(primary: pg.Pool): ReadReplica | undefined {
  return replicas.get(primary);
}

/** Undoes attachReadReplica (a server that closes leaves the pool as it found it). */
export function detachReadReplica(primary: pg.Pool, replica: ReadReplica): void {
  if (replicas.get(primary) === replica) replicas.delete(primary);
}
