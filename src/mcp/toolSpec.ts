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
  /** The SQL text this call runs on the user's behalf, for the audit log. */
  auditSql?: (input: z.infer<z.ZodObject<S>>) => string | undefined;
}

/** Keeps each spec's `args` typed against its own `input`. */
export function defineTool<S extends ZodRawShape>(spec: ToolSpec<S>): ToolSpec {
  return spec as unknown as ToolSpec;
}
