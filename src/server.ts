import express from "express";
import type pg from "pg";
import type { Logger } from "pino";
import { AuditLog } from "./audit/auditLog.ts";
import { OperationGate } from "./audit/operation.ts";
import { RateLimiter } from "./audit/rateLimiter.ts";
import { createAuthenticator } from "./auth/authenticate.ts";
import { bearerAuth, principalFromAuth } from "./auth/bearer.ts";
import type { Config } from "./config.ts";
import { toPublicError } from "./db/errors.ts";
import { createEmbedder } from "./dbt/embeddings.ts";
import { installDbtUpload } from "./dbt/upload.ts";
import { boundedServer, warnOnDroppedConnections } from "./http/clientBounds.ts";
import { boundedBody } from "./http/jsonBody.ts";
import { admitRequest } from "./graphql/admit.ts";
import type { PostGraphileInstance } from "postgraphile";
import { installConsole } from "./console/routes.ts";
import { installAsk } from "./ask/http.ts";
import { installMcp } from "./mcp/http.ts";
import { installSlack } from "./slack/routes.ts";
import { originAllowed } from "./mcp/origins.ts";
import { Metrics } from "./metrics/metrics.ts";
import { installMetrics } from "./metrics/route.ts";
import { rememberRequestSpan, startTracing, traced } from "./telemetry/tracing.ts";
import { attachReadReplica, createPool, detachReadReplica, ReadReplica, standbyUrl } from "./db/pool.ts";
import { KeyRing } from "./oauth/keys.ts";
import { installOAuth } from "./oauth/routes.ts";

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Wires the HTTP server: /health, /ready, /graphql + /graphiql, /mcp. `pool` connects as the
 * authenticator; `adminPool` (admin connection) is used only for health checks.
 */
export async function startServer(opts: {
  config: Config;
  pool: pg.Pool;
  log: Logger;
  port?: number;
}): Promise<RunningServer> {
  const { config, pool, log } = opts;
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", false);
  // Slow and idle clients: SEXTANT_HTTP_HEADERS_TIMEOUT_MS, _REQUEST_TIMEOUT_MS, _MAX_CONNECTIONS.
  const server = boundedServer(app, config.http);
  const drops = warnOnDroppedConnections(server, log);
  const logError = (id: string, error: unknown) => log.error({ err: error, requestId: id }, "request failed");
  const keys = new KeyRing(pool);
  const authenticator = createAuthenticator(pool, config, keys);
  const authenticate = authenticator.authenticate;
  const audit = new AuditLog(pool, (e) => log.warn({ err: e }, "audit flush failed; will retry"));
  const rateLimiter = new RateLimiter(pool);
  let inFlight = 0;
  const pools: Record<string, pg.Pool> = { primary: pool };
  const metrics = new Metrics({
    pools,
    audit: () => audit.stats(),
    snapshot: async () => (await pool.query("select sextant_private.metrics_snapshot() as s")).rows[0].s,
    inFlight: () => inFlight,
  });
  // The one audit and rate-limit step of every door: each MCP tool call, each GraphQL root field, each upload.
  const gate = new OperationGate(audit, rateLimiter, metrics);
  // SEXTANT_READ_URL: read-only tool calls go to a streaming standby (src/db/pool.ts), as the same login.
  const loginUrl = (pool as unknown as { options: { connectionString?: string } }).options.connectionString;
  const replica = config.readUrl && loginUrl
    ? new ReadReplica(
        createPool(standbyUrl(config.readUrl, loginUrl), 20, (e) => log.warn({ err: e }, "idle read-replica connection error"), { connectionTimeoutMillis: 2000 }),
        config.readMaxLagMs, (target) => metrics.observeRead(target))
    : undefined;
  if (replica) {
    attachReadReplica(pool, replica);
    pools.read = replica.pool;
  }
  let ready = false;
  let draining = false;
  let drained: (() => void) | undefined;
  // SEXTANT_OTLP_ENDPOINT: a span per HTTP request (and per MCP tool call, src/mcp/registerTools.ts).
  const stopTracing = config.otlpEndpoint ? await startTracing(config.otlpEndpoint) : undefined;
  if (stopTracing) {
    // Span names from a fixed list of routes: never the caller's path.
    const ROUTES = new Set(["mcp", "graphql", "dbt", "ask", "slack", "console", "oauth", "authorize", "token", "register", ".well-known", "health", "ready", "metrics"]);
    app.use((req, res, next) => {
      const first = req.path.split("/")[1] ?? "";
      const route = ROUTES.has(first) ? `/${first}` : "other";
      void traced(`${req.method} ${route}`, req.headers.traceparent, { "http.request.method": req.method, "http.route": route }, () =>
        new Promise<void>((resolve) => {
          rememberRequestSpan(req); // GraphQL's SQL names its session after this span
          res.once("close", resolve);
          next();
        }));
    });
  }

  // In-flight requests, for the drain on shutdown. A client's standing MCP event stream (GET /mcp)
  // never ends by itself, so it is not waited for; calls are (POST, and their SSE answers).
  app.use((req, res, next) => {
    if (draining) {
      res.setHeader("Connection", "close");
      return void res.status(503).json({ code: "SX503", message: "the server is shutting down", hint: "Retry: another server or the restarted one will answer." });
    }
    if (req.method === "GET" && req.path === "/mcp") return next();
    inFlight++;
    res.once("close", () => {
      if (--inFlight === 0) drained?.();
    });
    next();
  });

  // CORS: only configured origins; credentials are Bearer headers, never cookies.
  app.use((req, res, next) => {
    const origin = req.headers.origin;
    if (origin && originAllowed(origin, config)) {
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Vary", "Origin");
      res.setHeader("Access-Control-Allow-Headers", "authorization, content-type, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, sextant-tool-groups");
      res.setHeader("Access-Control-Expose-Headers", "mcp-session-id, www-authenticate");
      res.setHeader("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
      if (req.method === "OPTIONS") return void res.status(204).end();
    }
    next();
  });

  app.get("/health", async (_req, res) => {
    const started = performance.now();
    try {
      await pool.query("select 1");
      // audit: stored/dropped/queued counts (never any event's text), for operators' alerts.
      const read = replica?.state();
      res.json({ status: "ok", database: "up", latency_ms: Math.round((performance.now() - started) * 10) / 10, audit: audit.stats(),
        ...(read && { read_replica: { status: read.healthy ? "in use" : "not in use (down or lagging): reads go to the primary", lag_ms: read.lagMs } }) });
    } catch {
      res.status(503).json({ status: "degraded", database: "down" });
    }
  });
  installMetrics(app, metrics, config.metricsToken);
  app.get("/ready", (_req, res) => {
    if (ready && !draining) res.json({ status: "ready" });
    else res.status(503).json({ status: "starting" });
  });

  // Server-Timing: time spent in this process for the request, for clients and benchmarks.
  app.use((_req, res, next) => {
    const started = performance.now();
    const writeHead = res.writeHead;
    res.writeHead = function (this: typeof res, ...args: Parameters<typeof writeHead>) {
      if (!res.headersSent) res.setHeader("Server-Timing", `app;dur=${(performance.now() - started).toFixed(2)}`);
      return writeHead.apply(this, args);
    } as typeof writeHead;
    next();
  });

  // OAuth 2.1: tokens are issued for /mcp (MCP clients) or /graphql (apps), each usable only there.
  const mcpResource = { url: `${config.publicUrl}/mcp`, metadataUrl: `${config.publicUrl}/.well-known/oauth-protected-resource/mcp` };
  const graphqlResource = { url: `${config.publicUrl}/graphql`, metadataUrl: `${config.publicUrl}/.well-known/oauth-protected-resource/graphql` };
  // MCP first: its calls are the hot path, and no route before it matches /mcp.
  const embedder = createEmbedder(config.embeddings);
  const mcp = installMcp(app, { pool, authenticate, config, logError, audit, rateLimiter, gate, embedder, resource: mcpResource,
    logRefused: (e) => log.debug({ reason: e.message.slice(0, 300) }, "mcp request refused") });
  installOAuth(app, {
    pool, keys, authenticate, log, upstream: config.oidc, onRevoke: authenticator.forget,
    settings: { issuer: config.publicUrl, resources: [mcpResource.url, graphqlResource.url], accessTtlSeconds: config.oauthAccessTtl, refreshTtlSeconds: config.oauthRefreshTtl, allowHosts: config.sourceAllowHosts },
  });
  installDbtUpload(app, { pool, authenticate, gate, embedder, logError, resource: graphqlResource, limits: config.upload });
  installConsole(app, { pool, gate, embedder, logError, log, publicUrl: config.publicUrl, uploadLimits: config.upload, upstream: config.oidc, keys });
  installAsk(app, { pool, authenticate, gate, embedder, logError, settings: config.ask, resource: graphqlResource });
  installSlack(app, { pool, gate, embedder, logError, settings: config.ask });

  // Every request is one call here; its other root fields are counted inside GraphQL (operationPlugin.ts).
  // The body is read here, as the Buffer PostGraphile reads itself (its maxRequestLength, 1 MB in
  // src/graphql/preset.ts; not inflated, as it does not), so that past 1 MB it is refused at once
  // and the connection closed (PostGraphile answered 413 but read on until the request timeout).
  app.post("/graphql", bearerAuth(authenticate, graphqlResource), admitRequest(gate, (req) => principalFromAuth((req as express.Request).auth)),
    boundedBody(express.raw({ type: () => true, limit: 1_000_000, inflate: false }), 1_000_000));
  app.options("/graphql", (_req, res) => void res.status(204).end());
  // PostGraphile's own routes are added to this router once it is loaded, right after the
  // server listens (src/graphql/mount.ts); a GraphQL request that comes first waits for it.
  const graphqlRoutes = express.Router();
  let pgl: PostGraphileInstance | undefined;
  let graphqlLoaded: (error?: unknown) => void = () => {};
  const graphqlReady = new Promise<void>((resolve, reject) => (graphqlLoaded = (e) => (e ? reject(e) : resolve())));
  graphqlReady.catch(() => {}); // a failed load answers each GraphQL request with the error instead
  app.use(["/graphql", "/graphiql"], (_req, _res, next) => void graphqlReady.then(() => next(), next));
  app.use(graphqlRoutes);

  // Nothing matched: 404 here, in the public shape. Express's own final handler reads the whole
  // request body before it answers, for as long as a client sends it.
  app.use((req, res) => void res.status(404).json({ code: "SX404", message: `no route for ${req.method} ${req.path.slice(0, 200)}` }));

  // Last: errors from any route, in the public shape, without a stack.
  app.use((error: unknown, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (res.headersSent) return next(error);
    const e = error as { type?: string; status?: number };
    if (e.type === "entity.too.large") {
      return void res.status(413).json({ code: "SX413", message: "request body is too large" });
    }
    if (e.type === "entity.parse.failed") {
      return void res.status(400).json({ code: "SX400", message: "request body is not valid JSON" });
    }
    const pub = toPublicError(error, logError);
    const retry = /Retry after (\d+) seconds/.exec(pub.detail ?? "");
    if (retry) res.setHeader("Retry-After", retry[1]!);
    res.status(pub.status).json({ code: pub.code, message: pub.message, detail: pub.detail, hint: pub.hint });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? config.port, config.host, () => resolve());
  });
  // Ready once listening: MCP and the other routes answer now. The GraphQL schema (built from
  // the catalog, seconds on a large database) is built meanwhile; a GraphQL request that comes
  // first waits for it (grafserv's schemaWaitTime).
  ready = true;
  const loading = import("./graphql/mount.ts")
    .then((m) => m.mountGraphql(graphqlRoutes, server, pool, logError, gate, config.graphqlLimits))
    .then((instance) => {
      pgl = instance;
      graphqlLoaded();
      return instance.getSchema();
    })
    .catch((error: unknown) => {
      graphqlLoaded(error);
      log.error({ err: error }, "GraphQL failed to load");
    });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  return {
    url: `http://${config.host === "0.0.0.0" ? "localhost" : config.host}:${port}`,
    port,
    /**
     * Graceful: stops accepting (the listening socket closes, idle keep-alive connections end,
     * a request arriving on a busy one gets 503), waits up to config.shutdownTimeoutMs for
     * in-flight calls to answer, then ends the rest and flushes audit and rate counts. The
     * caller closes the pools afterwards.
     */
    async close() {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (drained = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, config.shutdownTimeoutMs))),
        ]);
        clearTimeout(timer);
        if (inFlight > 0) log.warn({ inFlight }, "shutdown: calls still running after SEXTANT_SHUTDOWN_TIMEOUT_MS; ending them");
      }
      await mcp.close();
      await audit.close();
      await rateLimiter.close(); // leased calls left unused are given back
      await authenticator.close();
      server.closeAllConnections();
      await closed;
      drops.stop();
      await loading;
      await pgl?.release();
      await stopTracing?.();
      if (replica) {
        detachReadReplica(pool, replica);
        await replica.close();
      }
    },
  };
}
