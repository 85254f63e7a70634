import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { workerUrl } from "../src/db/migrate.ts";
import { connectBuilder } from "../src/worker/materialize.ts";
import { pipelineHelpers } from "./helpers/pipelines.ts";
import { useTestDatabase } from "./helpers/setup.ts";

// The swap of a run is one SQL function (sextant_exec.swap_run), called here from plain SQL
// sessions opened as the worker opens them: claim as sextant_worker, stage and swap as the
// tenant's builder. No worker runs in this file: the staged tables are written by hand.

const db = useTestDatabase();
let worker: pg.Client;
const builders: pg.Client[] = [];
const { definePipeline, provision, requestRun, status, count } = pipelineHelpers(() => db);

beforeAll(async () => {
  worker = new pg.Client({ connectionString: await workerUrl(db.adminUrl) });
  await worker.connect();
  await provision("acme", "shop_api");
  await definePipeline("acme");
});
afterAll(async () => {
  for (const b of builders) await b.end().catch(() => {});
  await worker?.end();
});

/** Claims a new run of acme's pipeline as the worker; returns it and a session as acme's builder. */
async function claimed() {
  const runId = await requestRun("acme", "shop_api");
  const claim = (await worker.query("select sextant_private.claim_run($1, 'w1', 1) as c", [runId])).rows[0].c;
  const builder = await connectBuilder(await workerUrl(db.adminUrl), claim.builder_role, claim.builder_password);
  builders.push(builder);
  return { runId, claim, builder, stage: claim.stage_schema as string };
}

const loaded = (...tables: [string, number][]) =>
  JSON.stringify(tables.map(([table, rows]) => ({ table, kind: "entity", rows, relkind: "table" })));

async function endRun(runId: number, attempt: number) {
  await worker.query("select sextant_private.end_run($1, 'failed', 'test over', 'w1', $2)", [runId, attempt]);
}

describe("swap_run: a run's staged tables replace the old ones in one transaction", () => {
  test("moves the tables into the target schema, counts rows changed, grants readers and ends the run", async () => {
    const first = await claimed();
    await first.builder.query(`create table ${first.stage}.customers as select g::bigint as id, 'c' || g as name, '{}'::jsonb as _raw from generate_series(1, 3) g`);
    await first.builder.query(`create table ${first.stage}.orders as select g::bigint as id from generate_series(1, 5) g`);
    const { rows } = await first.builder.query("select sextant_exec.swap_run($1, 'w1', $2, $3) as tables",
      [first.runId, first.claim.attempt, loaded(["customers", 3], ["orders", 5])]);
    expect(rows[0].tables).toEqual([
      { schema: "t_acme__shop_api", table: "customers", kind: "entity", rows: 3, rows_changed: 3 },
      { schema: "t_acme__shop_api", table: "orders", kind: "entity", rows: 5, rows_changed: 5 },
    ]);
    expect(await status(first.runId)).toMatchObject({ status: "succeeded", current_step: "done" });
    expect(await count("pg_namespace where nspname = '" + first.stage + "'")).toBe(0);
    const reader = (await db.admin.query("select has_table_privilege('sextant_t_acme', 't_acme__shop_api.customers', 'select') as ok")).rows[0];
    expect(reader.ok).toBe(true);

    // Again: one customer renamed, one gone, one new; _raw (key order) does not count.
    const second = await claimed();
    await second.builder.query(`create table ${second.stage}.customers as
      select id::bigint, name, '{"x": 1}'::jsonb as _raw from (values (1, 'c1'), (2, 'renamed'), (4, 'c4')) as v(id, name)`);
    const again = await second.builder.query("select sextant_exec.swap_run($1, 'w1', $2, $3) as tables",
      [second.runId, second.claim.attempt, loaded(["customers", 3])]);
    expect(again.rows[0].tables[0]).toMatchObject({ table: "customers", rows: 3, rows_changed: 4 });
    expect(await count("t_acme__shop_api.customers")).toBe(3);
    expect((await db.admin.query("select run_id, rows_changed from sextant.materialized_tables where table_name = 'customers'")).rows[0])
      .toEqual({ run_id: second.runId, rows_changed: 4 });
  });

  test("a view outside the pipeline that depends on an old table stops the swap whole, with a hint", async () => {
    await db.admin.query("create view t_acme__shop_api.outside as select * from t_acme__shop_api.orders");
    const run = await claimed();
    await run.builder.query(`create table ${run.stage}.customers as select 9::bigint as id`);
    await run.builder.query(`create table ${run.stage}.orders as select 9::bigint as id`);
    await expect(run.builder.query("select sextant_exec.swap_run($1, 'w1', $2, $3)", [run.runId, run.claim.attempt, loaded(["customers", 1], ["orders", 1])]))
      .rejects.toMatchObject({ code: "SX400", message: expect.stringMatching(/^cannot replace t_acme__shop_api\.orders: /), hint: expect.stringMatching(/Another view depends on it/) });
    // Nothing moved: the old tables are whole, the run is still this attempt's.
    expect(await count("t_acme__shop_api.customers")).toBe(3);
    expect(await count("t_acme__shop_api.orders")).toBe(5);
    expect(await status(run.runId)).toMatchObject({ status: "running" });
    await endRun(run.runId, run.claim.attempt);
    await db.admin.query("drop view t_acme__shop_api.outside");
  });

  test("a table of that name the pipeline did not make is never replaced", async () => {
    await db.admin.query("create table t_acme__shop_api.customer_revenue (kept int)");
    const run = await claimed();
    await run.builder.query(`create table ${run.stage}.customer_revenue as select 1 as id`);
    await expect(run.builder.query("select sextant_exec.swap_run($1, 'w1', $2, $3)", [run.runId, run.claim.attempt, loaded(["customer_revenue", 1])]))
      .rejects.toMatchObject({ code: "SX400", message: "t_acme__shop_api already has customer_revenue, not made by this pipeline",
        hint: "Rename the entities or models, or point the pipeline at another schema." });
    expect((await db.admin.query("select count(*)::int as n from information_schema.columns where table_schema = 't_acme__shop_api' and table_name = 'customer_revenue' and column_name = 'kept'")).rows[0].n).toBe(1);
    await endRun(run.runId, run.claim.attempt);
    await db.admin.query("drop table t_acme__shop_api.customer_revenue");
  });

  test("only the builder of the run's own tenant may swap it; the worker's own session may not", async () => {
    const run = await claimed();
    const { rows } = await db.admin.query("select value from sextant_private.settings where key = 'builder_password:globex'");
    const globex = await connectBuilder(await workerUrl(db.adminUrl), "sextant_t_globex__builder", rows[0].value);
    builders.push(globex);
    await expect(globex.query("select sextant_exec.swap_run($1, 'w1', $2, '[]')", [run.runId, run.claim.attempt])).rejects.toMatchObject({ code: "SX403" });
    await expect(worker.query("select sextant_exec.swap_run($1, 'w1', $2, '[]')", [run.runId, run.claim.attempt])).rejects.toMatchObject({ code: "42501" });
    await expect(worker.query("select sextant_private.foreign_tables(1, 'x', '{}')")).rejects.toMatchObject({ code: "42501" });
    // A late attempt cannot swap either (finish_build refuses it), and nothing moves.
    await expect(run.builder.query("select sextant_exec.swap_run($1, 'w1', $2, '[]')", [run.runId, run.claim.attempt + 1])).rejects.toMatchObject({ code: "SX409" });
    expect(await status(run.runId)).toMatchObject({ status: "running" });
    await endRun(run.runId, run.claim.attempt);
  });
});
