import { randomUUID } from "node:crypto";

/** What a caller may see of an error: never a stack, never internals. */
export interface PublicError {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  status: number;
}

/** Sextant's SX codes and the PostgreSQL codes a caller can act on, with their HTTP status. */
const STATUS: Record<string, number> = {
  SX400: 400,
  SX401: 401,
  SX403: 403,
  SX404: 404,
  SX409: 409,
  SX413: 413,
  SX429: 429,
  SX499: 499, // the caller went away and its call was cancelled (nginx's "client closed request")
  SX502: 502, // an upstream service (the embeddings endpoint, a source's server) failed
  SX504: 504, // a source's server canceled its part of a query (its statement timeout)
  "42501": 403, // insufficient_privilege
  "57014": 408, // query_canceled (statement timeout)
  "42P01": 404, // undefined_table
  "3F000": 404, // invalid_schema_name
  "42883": 404, // undefined_function
  "42703": 400, // undefined_column
  "42601": 400, // syntax_error
  "22P02": 400, // invalid_text_representation
  "25006": 403, // read_only_sql_transaction
};

/** PostgreSQL error classes (first two characters of SQLSTATE) a caller can act on. */
const CLASS_STATUS: Record<string, number> = {
  "22": 400, // data exception (bad cast, division by zero, ...)
  "42": 400, // syntax error or access rule violation
  "0A": 400, // feature not supported
  "21": 400, // cardinality violation
  "2B": 400,
  "25": 403, // invalid transaction state (read-only)
  "54": 413, // program limit exceeded
  "53": 503, // insufficient resources
  "40": 409, // serialization failure, deadlock
  "57": 503, // operator intervention
};

/**
 * PostgreSQL's messages quote values (a failed cast quotes the whole value), so an error could
 * carry what the response byte cap refuses: every text a caller sees is cut to 1,000 characters.
 */
const MAX_ERROR_TEXT = 1000;
function cut(text: string): string {
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}... (cut at ${MAX_ERROR_TEXT} characters)` : text;
}

/** An error raised by Sextant's own TypeScript with an SX code (same shape as a SQL one). */
export class SextantError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** What a call whose caller went away (closed the connection, cancelled the request) ends with: audited as refused. */
export function callerGoneError(): SextantError {
  return new SextantError("SX499", "the caller went away (closed the connection or cancelled the request); the call was cancelled");
}

/**
 * Whether a call that failed after its caller left failed because of that: its statement was
 * cancelled (57014; SX504 when the runner names a source whose part of the query the cancel
 * ended) or refused because the caller had gone (SX499). Any other failure keeps its own code in
 * the audit: a refusal is not hidden behind SX499 by leaving before the answer, nor when the
 * cancel request never arrived (a proxy that does not pass it) and the statement ran on to fail
 * for its own reason.
 */
export function failedForCallerGone(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "57014" || code === "SX504" || code === "SX499";
}

/**
 * The only mapping from an error to what callers see. Known codes keep their message, detail
 * and hint; anything else becomes "internal error" with a request id, and `log` gets the rest.
 */
export function toPublicError(error: unknown, log?: (id: string, error: unknown) => void): PublicError {
  const e = error as { code?: unknown; message?: unknown; detail?: unknown; hint?: unknown; where?: unknown };
  const code = typeof e?.code === "string" ? e.code : undefined;
  // postgres_fdw names the foreign server it could not reach; a source's server is
  // sextant_src__<tenant>__<source> (sql/sources.sql), so the caller is told which source.
  const source = code?.startsWith("08") && typeof e.message === "string"
    ? /^could not connect to server "sextant_src__[a-z0-9]+(?:_[a-z0-9]+)*__([a-z0-9]+(?:_[a-z0-9]+)*)"/.exec(e.message)?.[1]
    : undefined;
  if (source) {
    return {
      code: "SX502",
      message: `source ${source} is unreachable: its PostgreSQL server refused or did not answer the connection`,
      hint: "Other sources and local tables still work. The operator can check it with `sextant source refresh`.",
      status: 502,
    };
  }
  // A source's server lost mid-query: postgres_fdw names no server then, only the remote SQL.
  if (code?.startsWith("08") && typeof e.where === "string" && e.where.includes("remote SQL command: ")) {
    return {
      code: "SX502",
      message: "a source's PostgreSQL server closed the connection during the query",
      hint: "Other sources and local tables still work; run the query again, or ask an operator to check the source (`sextant source list`).",
      status: 502,
    };
  }
  const status = code ? (STATUS[code] ?? CLASS_STATUS[code.slice(0, 2)]) : undefined;
  if (code && status) {
    return {
      code,
      message: cut(String(e.message ?? "error")),
      ...(typeof e.detail === "string" && e.detail ? { detail: cut(e.detail) } : {}),
      ...(typeof e.hint === "string" && e.hint ? { hint: cut(e.hint) } : {}),
      status,
    };
  }
  const id = randomUUID();
  log?.(id, error);
  return { code: "internal", message: `internal error (request id ${id})`, status: 500 };
}
