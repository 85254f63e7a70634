import { afterAll, beforeAll, expect, test } from "vitest";
import { inputSchema } from "../../src/mcp/registerTools.ts";
import { allTools } from "../../src/mcp/server.ts";
import { buildCall } from "../../src/mcp/toolSpec.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** Arguments that are Sextant's own and never reach SQL. */
const LOCAL = new Set(["run_materialization.wait_seconds"]);

test("every tool calls one sextant function by its own argument names; volatility matches read/write", async () => {
  const { rows } = await db.admin.query<{ name: string; args: string[]; modes: string[] | null; volatile: string; defaults: number; nargs: number }>(`
    select p.proname as name, coalesce(p.proargnames, '{}') as args, p.proargmodes::text[] as modes, p.provolatile as volatile,
           p.pronargdefaults as defaults, p.pronargs as nargs
      from pg_proc p where p.pronamespace = 'sextant'::regnamespace`);
  for (const spec of allTools) {
    const overloads = rows.filter((r) => r.name === spec.fn);
    expect(overloads.length, `sextant.${spec.fn}`).toBe(1);
    const fn = overloads[0]!;
    // Input arguments only (OUT/TABLE columns share proargnames).
    const inputs = fn.args.filter((_, i) => !fn.modes || fn.modes[i] === "i" || fn.modes[i] === "b" || fn.modes[i] === "v");
    const mapped = Object.values(spec.params) as string[];
    for (const name of mapped) expect(inputs, `${spec.name} → ${spec.fn}(${name})`).toContain(name);
    if (spec.embed) expect(inputs).toEqual(expect.arrayContaining(["question_embedding", "embedding_model"]));
    for (const key of Object.keys(spec.input)) {
      if (!LOCAL.has(`${spec.name}.${key}`)) expect(spec.params, `${spec.name}.${key} maps to an SQL argument`).toHaveProperty(key);
    }
    // Arguments a tool may leave out have SQL defaults; the rest are required in the tool too.
    const required = inputs.slice(0, fn.nargs - fn.defaults);
    const schema = inputSchema(spec) as { required?: string[] };
    const requiredTool = (schema.required ?? []).map((k) => (spec.params as Record<string, string>)[k]);
    expect(requiredTool.sort(), spec.name).toEqual([...required].sort());
    expect(fn.volatile === "v" ? "writes" : "reads", `${spec.name}: sextant.${spec.fn} is ${fn.volatile}`).toBe(spec.writes ? "writes" : "reads");
  }
});

test("the SQL a call sends names only the arguments given", () => {
  const list = allTools.find((t) => t.name === "list_tables")!;
  expect(buildCall(list, { schema: "shop" })).toEqual({ sql: "select * from sextant.list_tables(schema_name => $1)", args: ["shop"] });
  expect(buildCall(list, {}).sql).toBe("select * from sextant.list_tables()");
  const run = allTools.find((t) => t.name === "run_materialization")!;
  expect(buildCall(run, { pipeline: "p", entities: ["a"], wait_seconds: 5 })).toEqual({
    sql: "select id as run_id, status, entities, created_at from sextant.run_materialization(pipeline => $1, entities => $2::text[])",
    args: ["p", ["a"]],
  });
});
