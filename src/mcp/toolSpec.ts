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
}

/** Keeps each spec's `args` typed against its own `input`. */
export function defineTool<S extends ZodRawShape>(spec: ToolSpec<S>): ToolSpec {
  return spec as unknown as ToolSpec;
}
