import path from "node:path";
import { readAskSettings, type AskSettings } from "./ask/settings.ts";
import type { EmbeddingsSettings } from "./dbt/embeddings.ts";
import { readUploadLimits, type UploadLimits } from "./dbt/uploadLimits.ts";

/** Every setting Sextant reads from the environment, read once. README lists them all. */
export interface Config {
  /** External PostgreSQL (admin connection). Unset: the embedded PostgreSQL is used. */
  databaseUrl: string | undefined;
  /** Where the embedded PostgreSQL and local state live. */
  dataDir: string;
  /** Port of the embedded PostgreSQL. */
  pgPort: number;
  port: number;
  host: string;
  /** Public URL of this server, used in printed hints and token audiences. */
  publicUrl: string;
  jwtSecret: string | undefined;
  jwksUrl: string | undefined;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  /** Hostnames allowed in the Host header of /mcp (DNS-rebinding protection). */
  allowedHosts: string[];
  /** Origins allowed for browsers (CORS and /mcp Origin check). Empty: none. */
  allowedOrigins: string[];
  bodyLimit: string;
  /** Answer plain 2025-era tools/call requests on /mcp without the SDK (src/mcp/directCall.ts); off: every request through the SDK. */
  mcpDirectCalls: boolean;
  logLevel: string;
  /** Load the demo tenant on first start (default: with the embedded PostgreSQL only). */
  demo: boolean;
  /** Run the pipeline worker inside `sextant serve` (off: run `sextant worker` elsewhere). */
  worker: boolean;
  workerConcurrency: number;
  /** A running run whose worker sent no heartbeat for this long is retried by another worker. */
  workerStaleMs: number;
  /** GraphQL cost bounds, checked before a request runs: nesting depth, aliased fields, estimated values. */
  graphqlLimits: { maxDepth: number; maxAliases: number; maxNodes: number };
  /** Hosts pipeline sources may reach although they resolve to private or loopback addresses ("*": any). */
  sourceAllowHosts: string[];
  /** The only directory CSV sources may read files from. */
  sourceFileDir: string;
  /** Lifetime of OAuth access tokens (seconds) and refresh tokens (seconds). */
  oauthAccessTtl: number;
  oauthRefreshTtl: number;
  /** Optional sign-in through an upstream OpenID Connect provider (the person must exist in Sextant). */
  oidc?: { issuer: string; clientId: string; clientSecret: string; name: string; trustEmail: boolean };
  /** Optional embeddings endpoint: dbt nodes get vectors at load time and search blends them in. */
  embeddings?: EmbeddingsSettings;
  /** Bounds on dbt uploads and loads: body bytes, bytes after decompression, zip entries. */
  upload: UploadLimits;
  /** Bearer token for GET /metrics; unset: /metrics answers loopback clients only. */
  metricsToken: string | undefined;
  /** OTLP/HTTP traces endpoint (…/v1/traces); unset: no spans are made or sent. */
  otlpEndpoint: string | undefined;
  /** On SIGTERM, how long in-flight calls may take to finish before connections are cut. */
  shutdownTimeoutMs: number;
  /**
   * Bounds on HTTP clients: the time to send a request's headers, and its whole request (headers
   * and body; not the answer, however long it streams), and the connections open at once (more
   * are closed on arrival).
   */
  http: { headersTimeoutMs: number; requestTimeoutMs: number; maxConnections: number };
  /** A streaming standby for read-only tools (authenticator credentials as for DATABASE_URL's). */
  readUrl: string | undefined;
  /** Past this replay lag (or when the standby is unreachable), reads go to the primary. */
  readMaxLagMs: number;
  /** Ask in plain English: the team's LLM endpoint, budgets, Slack (src/ask/settings.ts). */
  ask: AskSettings;
}

function list(value: string | undefined, fallback: string[]): string[] {
  if (value === undefined || value.trim() === "") return fallback;
  return value.split(",").map((s) => s.trim()).filter(Boolean);
}

function int(name: string, value: string | undefined, fallback: number, min = 0, max = 65535): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

/** A duration in milliseconds, `min` (0 unless given) to one hour. */
function millis(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > 3_600_000) throw new Error(`${name} must be a whole number of milliseconds from ${min} to 3600000, got "${value}"`);
  return n;
}

/** SEXTANT_HTTP_*: never 0, which would turn Node's bound off (or, for connections, refuse every one). */
function httpBounds(env: NodeJS.ProcessEnv): Config["http"] {
  const headersTimeoutMs = millis("SEXTANT_HTTP_HEADERS_TIMEOUT_MS", env.SEXTANT_HTTP_HEADERS_TIMEOUT_MS, 20_000, 1);
  const requestTimeoutMs = millis("SEXTANT_HTTP_REQUEST_TIMEOUT_MS", env.SEXTANT_HTTP_REQUEST_TIMEOUT_MS, 60_000, 1);
  if (requestTimeoutMs < headersTimeoutMs) {
    throw new Error(`SEXTANT_HTTP_REQUEST_TIMEOUT_MS (${requestTimeoutMs}) must be at least SEXTANT_HTTP_HEADERS_TIMEOUT_MS (${headersTimeoutMs}): the whole request includes its headers`);
  }
  const maxConnections = int("SEXTANT_HTTP_MAX_CONNECTIONS", env.SEXTANT_HTTP_MAX_CONNECTIONS, 1024, 1, 1_000_000);
  return { headersTimeoutMs, requestTimeoutMs, maxConnections };
}

function validUrl(name: string, value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === "http:" || url.protocol === "https:") return url.toString();
  } catch {}
  throw new Error(`${name} must be an http(s) URL, got "${value}"`);
}

/** Reads the configuration from `env` (process.env by default). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = int("PORT", env.PORT, 4000);
  const host = env.HOST || "127.0.0.1";
  const publicUrl = (env.SEXTANT_PUBLIC_URL || `http://localhost:${port}`).replace(/\/$/, "");
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(env.SEXTANT_DATA_DIR || ".sextant"),
    pgPort: int("SEXTANT_PG_PORT", env.SEXTANT_PG_PORT, 54329),
    port,
    host,
    publicUrl,
    jwtSecret: env.SEXTANT_JWT_SECRET || undefined,
    jwksUrl: env.SEXTANT_JWKS_URL || undefined,
    jwtIssuer: env.SEXTANT_JWT_ISSUER || undefined,
    jwtAudience: env.SEXTANT_JWT_AUDIENCE || undefined,
    allowedHosts: list(env.SEXTANT_ALLOWED_HOSTS, ["localhost", "127.0.0.1", "[::1]", new URL(publicUrl).hostname]),
    allowedOrigins: list(env.SEXTANT_CORS_ORIGINS, []),
    bodyLimit: env.SEXTANT_BODY_LIMIT || "1mb",
    mcpDirectCalls: env.SEXTANT_MCP_DIRECT_CALLS !== "0",
    logLevel: env.LOG_LEVEL || "info",
    // The demo goes into the embedded database only, unless asked for: DATABASE_URL is the
    // user's own database, where nothing should appear uninvited.
    demo: env.SEXTANT_DEMO ? env.SEXTANT_DEMO !== "0" : !env.DATABASE_URL,
    worker: env.SEXTANT_WORKER !== "0",
    workerConcurrency: Math.max(1, int("SEXTANT_WORKER_CONCURRENCY", env.SEXTANT_WORKER_CONCURRENCY, 2)),
    workerStaleMs: Math.max(1000, Number(env.SEXTANT_WORKER_STALE_MS || 30000)),
    graphqlLimits: {
      maxDepth: Math.max(1, int("SEXTANT_GRAPHQL_MAX_DEPTH", env.SEXTANT_GRAPHQL_MAX_DEPTH, 10)),
      maxAliases: int("SEXTANT_GRAPHQL_MAX_ALIASES", env.SEXTANT_GRAPHQL_MAX_ALIASES, 100),
      maxNodes: Math.max(1, int("SEXTANT_GRAPHQL_MAX_NODES", env.SEXTANT_GRAPHQL_MAX_NODES, 50_000)),
    },
    sourceAllowHosts: list(env.SEXTANT_SOURCE_ALLOW_HOSTS, []),
    oidc: env.SEXTANT_OIDC_ISSUER
      ? {
          issuer: env.SEXTANT_OIDC_ISSUER.replace(/\/$/, ""),
          clientId: env.SEXTANT_OIDC_CLIENT_ID ?? "",
          clientSecret: env.SEXTANT_OIDC_CLIENT_SECRET ?? "",
          name: env.SEXTANT_OIDC_NAME || new URL(env.SEXTANT_OIDC_ISSUER).hostname,
          trustEmail: env.SEXTANT_OIDC_TRUST_EMAIL === "1",
        }
      : undefined,
    embeddings: env.SEXTANT_EMBEDDINGS_URL
      ? { url: validUrl("SEXTANT_EMBEDDINGS_URL", env.SEXTANT_EMBEDDINGS_URL), model: env.SEXTANT_EMBEDDINGS_MODEL || "text-embedding-3-small", apiKey: env.SEXTANT_EMBEDDINGS_API_KEY || undefined }
      : undefined,
    oauthAccessTtl: Math.max(1, Number(env.SEXTANT_OAUTH_ACCESS_TTL || 900)),
    oauthRefreshTtl: Math.max(60, Number(env.SEXTANT_OAUTH_REFRESH_TTL || 30 * 86400)),
    upload: readUploadLimits(env),
    metricsToken: env.SEXTANT_METRICS_TOKEN || undefined,
    otlpEndpoint: env.SEXTANT_OTLP_ENDPOINT ? validUrl("SEXTANT_OTLP_ENDPOINT", env.SEXTANT_OTLP_ENDPOINT) : undefined,
    shutdownTimeoutMs: millis("SEXTANT_SHUTDOWN_TIMEOUT_MS", env.SEXTANT_SHUTDOWN_TIMEOUT_MS, 10_000),
    http: httpBounds(env),
    readUrl: env.SEXTANT_READ_URL || undefined,
    readMaxLagMs: millis("SEXTANT_READ_MAX_LAG_MS", env.SEXTANT_READ_MAX_LAG_MS, 5_000),
    ask: readAskSettings(env),
    sourceFileDir: path.resolve(env.SEXTANT_SOURCE_FILE_DIR || path.join(env.SEXTANT_DATA_DIR || ".sextant", "files")),
  };
}
