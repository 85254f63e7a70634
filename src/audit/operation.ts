import type { Principal } from "../auth/principal.ts";
import type { PublicError } from "../db/errors.ts";
import type { AuditLog } from "./auditLog.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { annotate } from "../telemetry/tracing.ts";
import type { Admission } from "../db/queryAsRole.ts";
import type { RateLimiter } from "./rateLimiter.ts";

/** What one operation was: the tool (MCP tool, `graphql:<field>`) and its SQL text, if any. */
export interface Operation {
  tool: string;
  sql?: string;
  requestId?: string;
}

/** How it ended: rows returned, or the public error it was refused or failed with. */
export interface OperationOutcome {
  started: number;
  rowCount?: number;
  failure?: PublicError;
}

/**
 * The one audit and rate-limit step every door passes through, per operation: an MCP tool
 * call, each root field of a GraphQL request (N fields are N calls). Counting goes to PostgreSQL at admission (sextant_private.admit_calls, exact across
 * server processes), events to sextant.audit_events (sextant_private.record_audit); neither can be
 * jammed by what one caller sends.
 */
export class OperationGate {
  constructor(
    private readonly audit?: AuditLog,
    private readonly rateLimiter?: RateLimiter,
    private readonly metrics?: Metrics,
  ) {}

  /** Counts `calls` operations against the principal's and tenant's limits, or throws SX429 (counting nothing). */
  async admit(principal: Principal, calls = 1): Promise<void> {
    if (calls === 1) await (await this.admission(principal))?.alone();
    else await this.rateLimiter?.hit(principal, calls);
  }

  /**
   * The same count for one call, to travel with the call's own SQL (src/db/queryAsRole.ts: one
   * round trip); undefined without limits, or when a lease already counted it (rateLimiter.ts).
   */
  async admission(principal: Principal): Promise<Admission | undefined> {
    return this.rateLimiter?.admission(principal);
  }

  /** Audits one operation's outcome (ok, refused below HTTP 500, error otherwise) and counts it in the metrics. */
  record(principal: Principal, op: Operation, outcome: OperationOutcome): void {
    const f = outcome.failure;
    const ms = performance.now() - outcome.started;
    const result = !f ? "ok" : f.status < 500 ? "refused" : "error";
    this.metrics?.observeOperation(principal.tenant, op.tool, result, ms / 1000, f?.code);
    annotate({ "sextant.tenant": principal.tenant, "sextant.outcome": result, ...(f ? { "sextant.error_code": f.code } : {}),
      ...(outcome.rowCount !== undefined ? { "sextant.rows": outcome.rowCount } : {}) });
    this.audit?.record({
      at: new Date().toISOString(),
      tenant_slug: principal.tenant,
      principal: principal.subject,
      auth_method: principal.authMethod,
      database_role: principal.dbRole,
      tool: op.tool,
      sql: op.sql,
      row_count: outcome.rowCount,
      duration_ms: Math.round(ms * 1000) / 1000,
      outcome: result,
      error_code: f?.code,
      error_message: f?.message,
      request_id: op.requestId,
    });
  }
}
