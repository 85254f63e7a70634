/**
 * JSON Schemas of tools' structuredContent. Compact on purpose: every tools/list carries all of
 * them, within the list's token budget (≤ 10,000 bytes, bench/RESULTS.md), so they name the
 * fields a result always has and type only those an agent acts on. The values inside come from
 * the database (others' text): results say so in `_meta` (registerTools.ts).
 */
type Schema = Record<string, unknown>;

/** An object that always has `required`; `typed` fields get their JSON type; other fields allowed. */
export function object(required: string[], typed: Record<string, string | string[]> = {}): Schema {
  const properties = Object.fromEntries(Object.entries(typed).map(([k, type]) => [k, { type }]));
  return { type: "object", ...(Object.keys(properties).length ? { properties } : {}), ...(required.length ? { required } : {}) };
}

/**
 * `result: "rows"` tools: the function's rows as objects, and their count. (Not typed: 39 bytes
 * in each of ten tools paid for describing query's columnar rows within the list's budget.)
 */
export const rowsOutput = object(["rows", "row_count"]);

/**
 * query and sample_table: columns, rows as arrays in the order of `columns` (columnar: objects
 * repeated every name in every row; see formatResult.ts), and where the next page starts when
 * truncated.
 */
export const queryOutput: Schema = {
  type: "object",
  properties: {
    rows: { type: "array", items: { type: "array" }, description: "each row's values in the order of columns" },
    truncated: { type: "boolean" },
    next_offset: { type: ["integer", "null"] },
  },
  required: ["columns", "rows", "row_count", "truncated", "next_offset"],
};

/** A single row whose fields the SQL function documents (COMMENT ON FUNCTION). */
export const rowOutput: Schema = { type: "object" };
