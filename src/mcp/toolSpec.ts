import type { ZodRawShape, z } from "zod";

/** The areas tools come in; a client may ask for some of them only (see toolGroups.ts). */
export const TOOL_GROUPS = ["catalog", "query", "dbt", "knowledge", "materialization"] as const;
export type ToolGroup = (typeof TOOL_GROUPS)[number];

/**
 * One MCP tool = one call of one SQL function `sextant.<fn>`. zod describes the input's shape
 * (types only: integers are integers); every rule about values, and every default, lives in
 * the SQL function, so MCP, GraphQL and psql agree. Arguments the caller leaves out are not
 * passed at all (named notation), so the function's own defaults apply.
 */
export interface ToolSpec<S extends ZodRawShape = ZodRawShape> {
  name: string;
  title: string;
  description: string;
  group: ToolGroup;
  input: S;
  /** The SQL function in schema sextant this tool calls. */
  fn: string;
  /**
   * Tool argument → the SQL function's argument name (tested against pg_proc). Arguments not
   * listed here are Sextant's own (run_materialization's wait_seconds), never sent to SQL.
   */
  params: Partial<Record<keyof S, string>>;
  /** SQL types for arguments PostgreSQL cannot infer from a parameter (e.g. `text[]`). */
  casts?: Partial<Record<keyof S, string>>;
  /** The select list around the call, `{call}` standing for it (default: `* from {call}`). */
  select?: string;
  /** JSON Schema of structuredContent (compact: it is sent in every tools/list). */
  output: Record<string, unknown>;
  /** `one`: the function returns a single row (an object); `rows`: a list. */
  result: "one" | "rows";
  /** Whether the tool changes anything (runs read-write and commits). */
  writes?: boolean;
  /** Writers only: whether it removes something (annotations.destructiveHint). */
  destructive?: boolean;
  /** Whether calling twice with the same arguments has no further effect (annotations.idempotentHint). */
  idempotent?: boolean;
  /** A check of the input before any SQL runs (e.g. the parser guard); throws SX errors. */
  guard?: (input: z.infer<z.ZodObject<S>>) => void;
  /** Text and structuredContent for a `one` result, when the default JSON is not right. */
  shape?: (row: Record<string, unknown>) => { text: string; structured: Record<string, unknown> };
  /**
   * Work after the SQL call, for tools that may wait (run_materialization with wait_seconds):
   * it polls with the caller's role and may report MCP progress; returns the final row.
   */
  follow?: (ctx: FollowContext<z.infer<z.ZodObject<S>>>) => Promise<Record<string, unknown>>;
  /**
   * Text to embed with the configured embeddings endpoint; its vector (or null) and the model's
   * name are passed as the SQL arguments question_embedding and embedding_model.
   */
  embed?: (input: z.infer<z.ZodObject<S>>) => string;
  /** The SQL text this call runs on the user's behalf, for the audit log. */
  auditSql?: (input: z.infer<z.ZodObject<S>>) => string | undefined;
}

export interface FollowContext<I> {
  input: I;
  row: Record<string, unknown>;
  /** Runs SQL as the caller (same role and settings as the tool's own call). */
  query: (sql: string, args: unknown[]) => Promise<Record<string, unknown>[]>;
  /** Sends an MCP progress notification when the client asked for them (a no-op otherwise). */
  progress: (progress: number, message: string) => Promise<void>;
  signal?: AbortSignal;
}

/** Keeps each spec's callbacks typed against its own `input`. */
export function defineTool<S extends ZodRawShape>(spec: ToolSpec<S>): ToolSpec {
  return spec as unknown as ToolSpec;
}

/**
 * The SQL of one call: `select … from sextant.fn(arg => $1, …)` with only the arguments given
 * (SQL defaults apply to the rest), and its parameter values.
 */
export function buildCall(spec: ToolSpec, input: Record<string, unknown>, extra: [string, unknown][] = []): { sql: string; args: unknown[] } {
  const named: string[] = [];
  const args: unknown[] = [];
  const given: [string, unknown, string | undefined][] = Object.entries(spec.params)
    .filter(([key]) => input[key] !== undefined)
    .map(([key, param]) => [param as string, input[key], spec.casts?.[key]]);
  for (const [param, value, cast] of [...given, ...extra.map(([p, v]) => [p, v, undefined] as [string, unknown, undefined])]) {
    args.push(value);
    named.push(`${param} => $${args.length}${cast ? `::${cast}` : ""}`);
  }
  const call = `sextant.${spec.fn}(${named.join(", ")})`;
  return { sql: `select ${(spec.select ?? "* from {call}").replace("{call}", call)}`, args };
}
