import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createToken } from "../helpers/db.ts";
import { gql } from "../helpers/graphql.ts";
import { postMcp, textOf } from "../helpers/mcpClient.ts";
import { useTestServer } from "../helpers/setup.ts";

// Out-of-range integer arguments, on every tool that takes one. PostgreSQL's integer is 32 bits:
// a larger number used to reach it as a bigint and came back as "function does not exist"
// (42883) or "out of range" (22003); it must be refused up front, naming the argument and its
// bound, on both MCP paths (the direct one and the SDK's), and GraphQL must say so plainly too.

const INT4 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
/** Counts and offsets the SQL refuses or clamps below 0 (a 0 still reaches it, for its own message). */
const COUNT = { min: 0, max: 2 ** 31 - 1 };

/** Each integer argument, its bounds, and the other arguments its tool needs. */
const INT_ARGS: { tool: string; arg: string; base: Record<string, unknown>; min: number; max: number }[] = [
  { tool: "query", arg: "max_rows", base: { sql: "select 1 as one" }, ...COUNT },
  { tool: "query", arg: "row_offset", base: { sql: "select 1 as one" }, ...COUNT },
  { tool: "list_tables", arg: "max_results", base: {}, ...COUNT },
  { tool: "list_tables", arg: "page_offset", base: {}, ...COUNT },
  { tool: "sample_table", arg: "n", base: { table: "orders" }, ...COUNT },
  { tool: "list_dbt_models", arg: "max_results", base: {}, ...COUNT },
  { tool: "list_dbt_models", arg: "page_offset", base: {}, ...COUNT },
  { tool: "search_dbt_models", arg: "max_results", base: { query: "orders" }, ...INT4 },
  { tool: "get_model_details", arg: "lineage_depth", base: { model: "orders" }, ...COUNT },
  { tool: "search_knowledge", arg: "max_results", base: { query: "orders" }, ...INT4 },
  { tool: "provision_schema", arg: "ttl_hours", base: { name: "bounds" }, min: 1, max: 8760 },
  // bigint ids: the integers a JSON number carries exactly.
  { tool: "get_materialization_status", arg: "run_id", base: {}, min: 1, max: 2 ** 53 - 1 },
  { tool: "cancel_materialization", arg: "run_id", base: {}, min: 1, max: 2 ** 53 - 1 },
];

/** Numbers past the bounds, as JSON text (so 2^63 is not rounded by JSON.stringify). */
const outside = (min: number, max: number) =>
  [String(max + 1), String(min - 1), "1000000000000", "-1000000000000", "9223372036854775808", "1e300", "-1e300"]
    .filter((v) => Number(v) > max || Number(v) < min);

const { db, server } = useTestServer();
let token: string;
beforeAll(async () => {
  token = await createToken(db, "acme", "tool-arg-bounds", "analyst");
});
afterAll(async () => {
  await db.admin.query("set role sextant_owner; drop schema if exists t_acme__bounds cascade; reset role;").catch(() => {});
});

/** tools/call as raw JSON-RPC; `meta` (params._meta) sends it through the SDK instead of the direct path. */
async function call(tool: string, args: string, meta: boolean) {
  const res = await fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}`, "mcp-protocol-version": "2025-06-18" },
    body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${tool}",${meta ? '"_meta":{},' : ""}"arguments":${args}}}`,
  });
  const text = await res.text();
  const json = JSON.parse(text.startsWith("{") ? text : /^data: (.*)$/m.exec(text)![1]!) as { result?: { isError?: boolean } };
  return json.result!;
}

const withArg = (base: Record<string, unknown>, arg: string, value: string) =>
  `{${[...Object.entries(base).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`), `"${arg}":${value}`].join(",")}}`;

describe("integer arguments out of range", () => {
  for (const { tool, arg, base, min, max } of INT_ARGS) {
    test(`${tool} refuses ${arg} outside ${min}..${max} on both MCP paths, naming it and the bound`, async () => {
      for (const value of outside(min, max)) {
        for (const meta of [false, true]) {
          const result = await call(tool, withArg(base, arg, value), meta);
          const where = `${tool} ${arg}=${value} ${meta ? "SDK" : "direct"}`;
          expect(result.isError, where).toBe(true);
          expect(textOf(result), where).toMatch(new RegExp(`^Input validation error: Invalid arguments for tool ${tool}: .*\\b${arg} must be ${Number(value) > max ? `<= ${max}` : `>= ${min}`}$`));
        }
      }
    });
  }

  test("values at the bounds still reach the SQL, which answers on its own terms", async () => {
    const top = await call("query", withArg({ sql: "select 1 as one" }, "max_rows", "2147483647"), false);
    expect(top.isError).toBeFalsy();
    // 0 passes the schema; the SQL's own refusal names the real range.
    const none = await call("sample_table", withArg({ table: "orders" }, "n", "0"), true);
    expect(textOf(none)).toMatch(/^error SX400: n must be between 1 and 1000/);
    const clamped = await call("search_knowledge", withArg({ query: "orders" }, "max_results", "-2147483648"), false);
    expect(clamped.isError).toBeFalsy();
    const ttl = await call("provision_schema", withArg({ name: "bounds" }, "ttl_hours", "8760"), false);
    expect(ttl.isError, textOf(ttl)).toBeFalsy();
    const run = await call("get_materialization_status", withArg({}, "run_id", "9007199254740991"), false);
    expect(run.isError).toBeFalsy();
    expect(textOf(run)).toBe("no such run (or not your tenant's)");
  });

  test("tools/list shows each integer argument's bounds", async () => {
    const res = await postMcp(`${server.url}/mcp`, token, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { "mcp-protocol-version": "2025-06-18" });
    const text = await res.text();
    const { result } = JSON.parse(text.startsWith("{") ? text : /^data: (.*)$/m.exec(text)![1]!) as { result: { tools: { name: string; inputSchema: { properties: Record<string, { type: string; minimum?: number; maximum?: number }> } }[] } };
    for (const { tool, arg, min, max } of INT_ARGS) {
      const p = result.tools.find((t) => t.name === tool)!.inputSchema.properties[arg]!;
      expect(p, `${tool}.${arg}`).toMatchObject({ type: "integer", minimum: min, maximum: max });
    }
  });

  test("GraphQL refuses an integer argument past 32 bits (a bigint past 64) with a plain message and no stack", async () => {
    for (const q of ['{ query(sql: "select 1 as one", maxRows: 1000000000000) { rowCount } }', '{ listTables(maxResults: 2147483648) { nodes { tableName } } }']) {
      const { status, body } = await gql(server.url, token, q);
      expect(status, q).toBe(400);
      expect(body.errors?.[0]?.message, q).toMatch(/^Int cannot represent non 32-bit signed integer value: (1000000000000|2147483648)$/);
      expect(JSON.stringify(body), q).not.toMatch(/\bat .*\.(m?js|ts):\d+/);
    }
    // A bigint argument (a string in GraphQL) past 64 bits: PostgreSQL's own message, nothing masked.
    const bigId = await gql(server.url, token, '{ getMaterializationStatus(runId: "99999999999999999999") { nodes { status } } }');
    expect(bigId.body.errors?.[0]).toMatchObject({ message: 'value "99999999999999999999" is out of range for type bigint', extensions: { code: "22003" } });
    const viaVariable = await gql(server.url, token, 'query($n: Int) { query(sql: "select 1 as one", maxRows: $n) { rowCount } }', { n: 1e12 });
    expect(viaVariable.status).toBe(400);
    expect(viaVariable.body.errors?.[0]?.message).toMatch(/^Variable "\$n" got invalid value 1000000000000; Int cannot represent non 32-bit signed integer value: 1000000000000$/);
    expect(JSON.stringify(viaVariable.body)).not.toMatch(/\bat .*\.(m?js|ts):\d+/);
  });
});
