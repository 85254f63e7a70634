import client from "prom-client";
import type pg from "pg";
import type { AuditStats } from "../audit/auditLog.ts";

/** What /metrics reads at scrape time from parts that keep their own counts. */
export interface MetricSources {
  /** Named pools (e.g. primary, read): connections in use, idle, waiting. */
  pools: Record<string, pg.Pool>;
  audit?: () => AuditStats;
  /** Counts across every tenant from PostgreSQL (sextant_private.metrics_snapshot). */
  snapshot?: () => Promise<{ runs: Record<string, number>; jobs: Record<string, number> }>;
  /** Calls being served now (see src/server.ts's drain). */
  inFlight?: () => number;
}

// Label values are Sextant's own names (tools, SX codes, tenants: bounded by the install), never a
// caller's text; anything else becomes "other", and past MAX_VALUES distinct values, too.
const NAME = /^[a-z][a-z0-9_:]{0,63}$/i;
const CODE = /^[A-Z0-9]{5}$/;
const MAX_VALUES = 500;

/** Keeps one label's set of values bounded, whatever reaches it. */
function bounded(pattern: RegExp) {
  const seen = new Set<string>();
  return (value: string | undefined): string => {
    if (!value || !pattern.test(value)) return "other";
    if (seen.has(value)) return value;
    if (seen.size >= MAX_VALUES) return "other";
    seen.add(value);
    return value;
  };
}

/** The door an operation came through, from its tool name (see OperationGate). */
function doorOf(tool: string): string {
  if (tool === "graphql" || tool.startsWith("graphql:")) return "graphql";
  if (tool === "dbt_upload") return "http";
  return "mcp";
}

/**
 * Prometheus metrics of one server (a registry of its own, so several servers in one process
 * do not mix): operations by tool, tenant and outcome, their latency, errors by code, pools,
 * the audit queue, runs and worker jobs by state, and Node's process metrics.
 */
export class Metrics {
  readonly registry = new client.Registry();
  private readonly tool = bounded(NAME);
  private readonly tenant = bounded(NAME);
  private readonly code = bounded(CODE);
  private readonly operations: client.Counter<"door" | "tool" | "tenant" | "outcome">;
  private readonly duration: client.Histogram<"door" | "tool">;
  private readonly errors: client.Counter<"tool" | "code">;
  private readonly readRouting: client.Counter<"target">;
  private readonly children = new Map<string, { count: client.Counter.Internal; time: client.Histogram.Internal<"door" | "tool"> }>();
  private audited = { stored: 0, dropped: 0 };
  private snapshotCache: { at: number; value: Promise<{ runs: Record<string, number>; jobs: Record<string, number> }> } | undefined;

  constructor(private readonly sources: MetricSources) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: "sextant_" });
    this.operations = new client.Counter({
      name: "sextant_operations_total", help: "Operations (MCP tool calls, GraphQL root fields, uploads) by door, tool, tenant and outcome (ok, refused, error).",
      labelNames: ["door", "tool", "tenant", "outcome"], registers,
    });
    this.duration = new client.Histogram({
      name: "sextant_operation_duration_seconds", help: "Time from admission to outcome of one operation.",
      labelNames: ["door", "tool"], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
    });
    this.errors = new client.Counter({
      name: "sextant_operation_errors_total", help: "Refused and failed operations by tool and error code (SX… or SQLSTATE).",
      labelNames: ["tool", "code"], registers,
    });
    this.readRouting = new client.Counter({
      name: "sextant_read_routing_total", help: "Read-only calls by where they ran: the standby (read), or the primary because the standby was down or lagging (fallback).",
      labelNames: ["target"], registers,
    });
    const pools = new client.Gauge({
      name: "sextant_pool_connections", help: "Database connections of the server's pools, by state (in_use, idle, waiting for one).",
      labelNames: ["pool", "state"], registers,
      collect: () => {
        for (const [name, pool] of Object.entries(this.sources.pools)) {
          pools.set({ pool: name, state: "in_use" }, pool.totalCount - pool.idleCount);
          pools.set({ pool: name, state: "idle" }, pool.idleCount);
          pools.set({ pool: name, state: "waiting" }, pool.waitingCount);
        }
      },
    });
    const queue = new client.Gauge({
      name: "sextant_audit_queue_depth", help: "Audit events waiting to be written.", registers,
      collect: () => void queue.set(this.sources.audit?.().queued ?? 0),
    });
    const audited = new client.Counter({
      name: "sextant_audit_events_total", help: "Audit events written (stored) or lost (dropped) since start.", labelNames: ["result"], registers,
      collect: () => {
        const s = this.sources.audit?.();
        if (!s) return;
        audited.inc({ result: "stored" }, s.stored - this.audited.stored);
        audited.inc({ result: "dropped" }, s.dropped - this.audited.dropped);
        this.audited = { stored: s.stored, dropped: s.dropped };
      },
    });
    const inFlight = new client.Gauge({
      name: "sextant_http_requests_in_flight", help: "HTTP requests being served now.", registers,
      collect: () => void inFlight.set(this.sources.inFlight?.() ?? 0),
    });
    // Three gauges from one read of the database (cached for a second; collects run in parallel).
    const state = bounded(NAME);
    const fromSnapshot = (gauge: client.Gauge<string>, key: "runs" | "jobs", label: string) => async () => {
      if (!this.sources.snapshot) return;
      const s = await this.snapshot().catch(() => undefined);
      gauge.reset();
      for (const [value, n] of Object.entries(s?.[key] ?? {})) gauge.set({ [label]: state(value) }, n);
    };
    const runs: client.Gauge<string> = new client.Gauge({
      name: "sextant_materialization_runs", help: "Materialization runs by status, all tenants.", labelNames: ["status"], registers,
      collect: () => fromSnapshot(runs, "runs", "status")(),
    });
    const jobs: client.Gauge<string> = new client.Gauge({
      name: "sextant_worker_jobs", help: "Worker jobs by state (ready, scheduled, running, failed), all tenants.", labelNames: ["state"], registers,
      collect: () => fromSnapshot(jobs, "jobs", "state")(),
    });
    const up = new client.Gauge({
      name: "sextant_database_up", help: "1 when this scrape could read the database's counts, else 0.", registers,
      collect: async () => {
        if (this.sources.snapshot) up.set(await this.snapshot().then(() => 1, () => 0));
      },
    });
  }

  /** The database's counts, read at most once a second however often /metrics is asked. */
  private snapshot() {
    const now = Date.now();
    if (!this.snapshotCache || now - this.snapshotCache.at > 1000) {
      const value = this.sources.snapshot!();
      value.catch(() => (this.snapshotCache = undefined));
      this.snapshotCache = { at: now, value };
    }
    return this.snapshotCache.value;
  }

  /** Counts one operation's outcome (called by OperationGate.record). */
  observeOperation(tenant: string, tool: string, outcome: string, seconds: number, code?: string): void {
    const t = this.tool(tool);
    const door = doorOf(tool);
    const n = this.tenant(tenant);
    // The label sets are bounded (above), so their children are kept: prom-client otherwise
    // hashes the label object on every call.
    const key = `${door}\u0000${t}\u0000${n}\u0000${outcome}`;
    let child = this.children.get(key);
    if (!child) {
      child = { count: this.operations.labels({ door, tool: t, tenant: n, outcome }), time: this.duration.labels({ door, tool: t }) };
      this.children.set(key, child);
    }
    child.count.inc();
    child.time.observe(Math.max(0, seconds));
    if (code) this.errors.inc({ tool: t, code: this.code(code) });
  }

  /** Counts one read-only call by where it ran. */
  observeRead(target: "read" | "fallback"): void {
    this.readRouting.inc({ target });
  }

  /** The text exposition format, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
