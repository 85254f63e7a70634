import type pg from "pg";

/** One tool call, as it lands in sextant.audit_events. */
export interface AuditEvent {
  at: string;
  tenant_slug: string;
  principal: string;
  auth_method: string;
  database_role: string;
  tool: string;
  sql?: string;
  row_count?: number;
  duration_ms: number;
  outcome: "ok" | "refused" | "error";
  error_code?: string;
  error_message?: string;
  request_id?: string;
}

/** What an operator sees of the audit queue (GET /health): nothing of any event's text. */
export interface AuditStats {
  stored: number;
  /** Events that could not be stored even sanitised, or that overflowed the queue while the database was away. */
  dropped: number;
  queued: number;
}

const MAX_QUEUE = 10_000;
// Bounds mirrored in sextant_private.record_audit (which cuts again): an event is small on the wire.
const MAX_SQL = 100_000;
const MAX_TEXT = 2_000;
// NUL, and UTF-16 surrogates without their other half.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text PostgreSQL can store: NUL (which `text` cannot hold, 22P05) and lone UTF-16 surrogates
 * (which JSON → text refuses) become U+FFFD, and the text is cut to `max` characters.
 */
export function storableText(value: string | undefined, max = MAX_TEXT): string | undefined {
  if (value === undefined || value === null) return undefined;
  return String(value).slice(0, max).replace(UNSTORABLE, "\uFFFD");
}

function sanitise(e: AuditEvent): AuditEvent {
  return {
    ...e,
    tenant_slug: storableText(e.tenant_slug) ?? "",
    principal: storableText(e.principal) ?? "",
    auth_method: storableText(e.auth_method) ?? "",
    database_role: storableText(e.database_role) ?? "",
    tool: storableText(e.tool) ?? "",
    sql: storableText(e.sql, MAX_SQL),
    error_code: storableText(e.error_code, 16),
    error_message: storableText(e.error_message),
    request_id: storableText(e.request_id, 64),
    row_count: Number.isSafeInteger(e.row_count) && e.row_count! <= 2_147_483_647 ? e.row_count : undefined,
    duration_ms: Number.isFinite(e.duration_ms) ? e.duration_ms : 0,
  };
}

/** Connection-level failures: the events are fine, the database is away; keep them for the next try. */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") return true; // socket errors (ECONNREFUSED, ...) and pool timeouts
  return /^(08|53|57)/.test(code) || code.startsWith("E");
}

/**
 * Appends audit events in batches (every `intervalMs` or `maxBatch` events), in their own
 * transactions outside the tool calls, so bookkeeping costs no round trip or disk flush per
 * call. Nothing one caller sends can jam the queue: events are made storable when recorded,
 * record_audit stores each event alone if the batch fails (sanitised, or counted as dropped),
 * and a batch is only kept for another try when the database itself is unreachable. Failures
 * reach `onError` as counts and codes, never with any event's text (events of other tenants).
 */
export class AuditLog {
  private queue: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly counts = { stored: 0, dropped: 0 };

  constructor(
    private readonly pool: pg.Pool,
    private readonly onError: (error: unknown) => void,
    private readonly intervalMs = 100,
    private readonly maxBatch = 200,
  ) {}

  record(event: AuditEvent): void {
    if (this.queue.length >= MAX_QUEUE) {
      this.counts.dropped++;
      return;
    }
    this.queue.push(sanitise(event));
    if (this.queue.length >= this.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Counters for operators: stored and dropped since start, and queued now. */
  stats(): AuditStats {
    return { ...this.counts, queued: this.queue.length };
  }

  /** Writes everything queued so far; resolves when it is in the database (or counted as dropped). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      const batch = this.queue.splice(0);
      if (batch.length === 0) return;
      try {
        const { rows } = await this.pool.query("select sextant_private.record_audit($1::json) as n", [JSON.stringify(batch)]);
        const stored = Number(rows[0]?.n ?? 0);
        this.counts.stored += stored;
        if (stored < batch.length) {
          this.counts.dropped += batch.length - stored;
          this.onError(new Error(`audit: ${batch.length - stored} of ${batch.length} events could not be stored and were dropped (${this.counts.dropped} since start)`));
        }
      } catch (error) {
        const code = String((error as { code?: unknown })?.code ?? "unknown");
        if (isTransient(error)) {
          const keep = batch.slice(0, MAX_QUEUE - this.queue.length); // bounded: never grow without limit
          this.counts.dropped += batch.length - keep.length;
          this.queue.unshift(...keep);
          this.onError(new Error(`audit: flush failed (${code}); ${keep.length} events kept for the next try, ${this.counts.dropped} dropped since start`));
          this.timer ??= setTimeout(() => void this.flush(), Math.max(this.intervalMs, 1000));
        } else {
          // record_audit stores event by event and never raises for one event; if it still
          // failed, retrying the same batch would fail forever and block everyone's events.
          this.counts.dropped += batch.length;
          this.onError(new Error(`audit: flush failed (${code}); ${batch.length} events dropped (${this.counts.dropped} since start)`));
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
