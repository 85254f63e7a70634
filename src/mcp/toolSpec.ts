import type { ZodRawShape, z } from "zod";

/**
 * One MCP tool = one SQL call. zod describes the input's shape; every rule about values lives
 * in the SQL function, so MCP, GraphQL and psql agree.
 */
export interface ToolSpec<S extends ZodRawShape = ZodRawShape> {
  name: string;
  title: string;
  description: string;
  input: S;
  /** Parameterised SQL calling one function in schema sextant. */
  sql: string;
  args: (input: z.infer<z.ZodObject<S>>) => unknown[];
  /** `one`: the function returns a single row (an object); `rows`: a list. */
  result: "one" | "rows";
  /** Whether the tool changes anything (runs read-write and commits). */
  writes?: boolean;
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
   * Text to embed with the configured embeddings endpoint; its vector (or null: no endpoint,
   * blank text, or the endpoint failed) and the model's name are passed to the SQL as two more
   * arguments after `args`.
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

/** Keeps each spec's `args` typed against its own `input`. */
export function defineTool<S extends ZodRawShape>(spec: ToolSpec<S>): ToolSpec {
  return spec as unknown as ToolSpec;
}
