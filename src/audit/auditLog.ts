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

/**
 * Appends audit events in batches (every `intervalMs` or `maxBatch` events), in their own
 * transactions outside the tool calls, so bookkeeping costs no round trip or disk flush per
 * call. A failed flush is retried with the next batch; `close` flushes what is left.
 */
export class AuditLog {
  private queue: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    private readonly onError: (error: unknown) => void,
    private readonly intervalMs = 100,
    private readonly maxBatch = 200,
  ) {}

  record(event: AuditEvent): void {
    this.queue.push(event);
    if (this.queue.length >= this.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Writes everything queued so far; resolves when it is in the database. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      const batch = this.queue.splice(0);
      if (batch.length === 0) return;
      try {
        await this.pool.query("select sextant_private.record_audit($1::json)", [JSON.stringify(batch)]);
      } catch (error) {
        this.queue.unshift(...batch.slice(0, 10_000 - this.queue.length)); // bounded: never grow without limit
        this.onError(error);
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
