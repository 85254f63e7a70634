import { AsyncLocalStorage } from "node:async_hooks";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import { parseTraceParent } from "@opentelemetry/core";
import type { TracerProvider } from "@opentelemetry/sdk-trace";

/**
 * OpenTelemetry traces, off unless SEXTANT_OTLP_ENDPOINT is set. Spans are made with the official
 * SDK and sent as OTLP/HTTP JSON in batches; no global context manager or auto-instrumentation is
 * installed (they patch modules): the span of the operation in progress is kept here, and
 * queryAsRole reads it to name the PostgreSQL session (application_name = `sextant <traceparent>`),
 * so a slow query in pg_stat_activity or the server log leads back to the trace.
 */
let tracer: Tracer | undefined;
let provider: TracerProvider | undefined;
const current = new AsyncLocalStorage<Span>();

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * Starts sending spans to `endpoint` (an OTLP/HTTP traces URL). Returns how to stop (flushes).
 * The SDK and exporter are loaded here, so a server without tracing does not load them.
 */
export async function startTracing(endpoint: string, service = "sextant"): Promise<() => Promise<void>> {
  const [{ OTLPTraceExporter }, { resourceFromAttributes }, { BatchSpanProcessor, TracerProvider }] = await Promise.all([
    import("@opentelemetry/exporter-trace-otlp-http"), import("@opentelemetry/resources"), import("@opentelemetry/sdk-trace")]);
  provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": service }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: endpoint, timeoutMillis: 5000 }), scheduledDelayMillis: 1000, maxQueueSize: 2048 })],
  });
  tracer = provider.getTracer("sextant");
  const mine = provider;
  return async () => {
    if (provider === mine) {
      tracer = undefined;
      provider = undefined;
    }
    await mine.shutdown().catch(() => {});
  };
}

/**
 * Runs `fn` inside a span named `name`, a child of the caller's W3C `traceparent` when it is
 * valid (anything else is ignored: a caller cannot break tracing or pick our span ids). Without
 * tracing, just runs `fn`.
 */
export async function traced<T>(name: string, traceparent: unknown, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  if (!tracer) return fn();
  const parent = typeof traceparent === "string" && TRACEPARENT.test(traceparent) ? parseTraceParent(traceparent) : null;
  const context = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, context);
  try {
    const result = await current.run(span, fn);
    const failed = (result as { isError?: unknown } | undefined)?.isError === true;
    if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
    return result;
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String((error as { code?: unknown }).code ?? "error") });
    throw error;
  } finally {
    span.end();
  }
}

/** Adds attributes to the span in progress (no-op without one). */
export function annotate(attributes: Attributes): void {
  current.getStore()?.setAttributes(attributes);
}

/** The span in progress as a W3C traceparent, for the database session; undefined without one. */
export function currentTraceparent(): string | undefined {
  const span = current.getStore();
  if (!span) return undefined;
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 1 ? "01" : "00")}`;
}

const requestSpans = new WeakMap<object, string>();

/** Remembers the span of an HTTP request (for doors that run their SQL outside it: GraphQL). */
export function rememberRequestSpan(req: object): void {
  const traceparent = currentTraceparent();
  if (traceparent) requestSpans.set(req, traceparent);
}

/** The traceparent of the request's span, when tracing is on. */
export function requestTraceparent(req: object | undefined): string | undefined {
  return req ? requestSpans.get(req) : undefined;
}

/** An MCP tool call's trace parent: `_meta.traceparent` (MCP), else the HTTP request's header. */
export function traceparentOf(ctx: unknown): unknown {
  const c = ctx as { mcpReq?: { _meta?: { traceparent?: unknown } }; http?: { req?: { headers?: { get?(name: string): string | null } } } } | undefined;
  return c?.mcpReq?._meta?.traceparent ?? c?.http?.req?.headers?.get?.("traceparent") ?? undefined;
}
