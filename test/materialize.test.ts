import { describe, expect, test } from "vitest";
import { asRole, withTx } from "./helpers/db.ts";
import { refusedInTx as refused, usePipelineFile } from "./helpers/pipelines.ts";

// Pipelines at the SQL door, as psql and the server call it: provisioned schemas, definitions,
// crossing tenants, schedules. Runs: materializeRuns; sources: materializeSources; the CLI, MCP
// and GraphQL: materializeDoors; the swap itself: materializeSwap.

const { db, asAdmin, provision, definePipeline, requestRun, status } = usePipelineFile();

describe("provisioned schemas", () => {
  test("an analyst provisions t_<tenant>__<name> with a TTL; it is listed with owner and expiry, and only its tenant reads it", async () => {
    const row = await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme__analyst");
      const r = (await c.query("select * from sextant.provision_schema('scratch', 2)")).rows[0];
      const listed = (await c.query("select * from sextant.list_schemas() where schema_name = 't_acme__scratch'")).rows[0];
      expect(listed).toMatchObject({ tenant: "acme", provisioned: true });
      expect(new Date(listed.expires_at).getTime() - Date.now()).toBeGreaterThan(3600_000);
      await asRole(c, "sextant_t_globex");
      const seen = (await c.query("select count(*)::int as n from sextant.list_schemas() where schema_name = 't_acme__scratch'")).rows[0].n;
      expect(seen).toBe(0);
      return r;
    });
    expect(row.schema_name).toBe("t_acme__scratch");
  });

  test("viewers cannot provision; nobody can name another tenant's schema, even with a direct INSERT", async () => {
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme");
      await refused(c, "select sextant.provision_schema('x')", "SX403");
    });
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme__admin");
      await refused(c, "insert into sextant.tenant_schemas (schema_name, tenant_slug, provisioned) values ('t_globex__x', 'acme', true)", "42501");
      await refused(c, "insert into sextant.tenant_schemas (schema_name, tenant_slug, provisioned) values ('t_globex__x', 'globex', true)", "42501");
      // Adopting an existing schema (another tenant's data) is refused too.
      await refused(c, "insert into sextant.tenant_schemas (schema_name, tenant_slug, provisioned) values ('globex_ops', 'acme', true)", "42501");
      await refused(c, "select sextant.provision_schema('Bad Name')", "SX400");
    });
  });

  test("teardown drops the schema; a schema a pipeline targets, or one not provisioned, is refused", async () => {
    await provision("acme", "temp");
    await db.admin.query("create table t_acme__temp.x as select 1 as a");
    await asAdmin("acme", (c) => c.query("select sextant.teardown_schema('temp')"));
    expect((await db.admin.query("select count(*)::int as n from pg_namespace where nspname = 't_acme__temp'")).rows[0].n).toBe(0);
    await definePipeline("acme");
    await expect(asAdmin("acme", (c) => c.query("select sextant.teardown_schema('shop_api')"))).rejects.toMatchObject({ code: "SX409" });
    await expect(asAdmin("acme", (c) => c.query("select sextant.teardown_schema('acme_sales')"))).rejects.toMatchObject({ code: "SX404" });
  });

  test("expired schemas are dropped by the scheduler tick", async () => {
    await provision("acme", "shortlived");
    await db.admin.query("update sextant.tenant_schemas set expires_at = now() - interval '1 minute' where schema_name = 't_acme__shortlived'");
    const { rows } = await db.admin.query("select sextant_private.scheduler_tick(now()) as r");
    expect(rows[0].r.schemas_dropped).toBeGreaterThanOrEqual(1);
    expect((await db.admin.query("select count(*)::int as n from pg_namespace where nspname = 't_acme__shortlived'")).rows[0].n).toBe(0);
  });
});

describe("crossing tenants and hostile input (SQL, as psql and the server run it)", () => {
  test("another tenant sees, runs, cancels and tears down nothing of acme's", async () => {
    const pipelineId = (await definePipeline("acme")).id;
    const runId = await requestRun("acme", "shop_api");
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_globex__admin");
      expect((await c.query("select * from sextant.list_pipelines()")).rows).toEqual([]);
      expect((await c.query("select * from sextant.get_materialization_status($1)", [runId])).rows).toEqual([]);
      await refused(c, "select sextant.run_materialization('shop_api')", "SX404");
      await refused(c, `select sextant.cancel_materialization(${runId})`, "SX404");
      await refused(c, "select sextant.teardown_schema('t_acme__shop_api')", "SX404");
      await refused(c, "select sextant.set_pipeline_secret('shop_api', 'x', 'y')", "SX404");
      await refused(c, "select sextant.delete_pipeline('shop_api')", "SX404");
      // Direct writes past the functions: RLS refuses or matches no row.
      expect((await c.query(`update sextant.materialization_runs set cancel_requested = true where id = ${runId}`)).rowCount).toBe(0);
      expect((await c.query("select count(*)::int as n from sextant.materialized_tables")).rows[0].n).toBe(0);
    });
    expect((await status(runId)).cancel_requested).toBe(false);
    await asAdmin("acme", (c) => c.query("select sextant.cancel_materialization($1)", [runId]));
    // With no run active: a run or a model pointing at acme's pipeline, written as globex.
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_globex__admin");
      await refused(c, `insert into sextant.materialization_runs (tenant_slug, pipeline_id) values ('acme', ${pipelineId})`, "42501");
      await refused(c, `insert into sextant.materialization_runs (tenant_slug, pipeline_id) values ('globex', ${pipelineId})`, "42501");
      await refused(c, `insert into sextant.pipeline_models (pipeline_id, tenant_slug, name, raw_sql) values (${pipelineId}, 'globex', 'evil', 'select 1')`, "42501");
    });
  });

  test.each([
    ["provision_schema", "select sextant.provision_schema($1)", ["x; drop schema acme_sales cascade"], "SX400"],
    ["provision_schema", "select sextant.provision_schema($1)", ["../globex_ops"], "SX400"],
    ["provision_schema", "select sextant.provision_schema($1)", ["a".repeat(80)], "SX400"],
    ["provision_schema", "select sextant.provision_schema($1)", ["ünïcode"], "SX400"],
    ["provision_schema", "select sextant.provision_schema($1, $2)", ["ok", -5], "SX400"],
    ["teardown_schema", "select sextant.teardown_schema($1)", ["t_globex__x"], "SX404"],
    ["teardown_schema", "select sextant.teardown_schema($1)", ["pg_catalog"], "SX404"],
    ["run_materialization", "select sextant.run_materialization($1)", ["shop_api'; drop table acme_sales.orders; --"], "SX404"],
    ["run_materialization", "select sextant.run_materialization($1, $2)", ["shop_api", ["customers", "pg_authid"]], "SX400"],
    ["create_pipeline", "select sextant.create_pipeline($1)", [JSON.stringify({ name: "x", source: "not an object" })], "SX400"],
    ["create_pipeline", "select sextant.create_pipeline($1)", [JSON.stringify({ name: "x", target_schema: "t_acme__shop_api", source: { kind: "file" }, entities: [{ name: "a" }] })], "SX400"],
    ["create_pipeline", "select sextant.create_pipeline($1)", [JSON.stringify({ name: "x", target_schema: "t_acme__shop_api", source: { kind: "http" }, entities: [{ name: "a; drop" }] })], "SX400"],
    ["set_pipeline_secret", "select sextant.set_pipeline_secret($1, $2, $3)", ["shop_api", "bad name!", "v"], "SX400"],
    ["set_pipeline_secret", "select sextant.set_pipeline_secret($1, $2, $3)", ["shop_api", "ok", ""], "SX400"],
    ["revoke_oauth_grant", "select sextant.revoke_oauth_grant($1)", [-1], "SX404"],
  ])("%s refuses %j with a clear error and changes nothing", async (_fn, sql, args, code) => {
    await definePipeline("acme");
    const before = await db.admin.query("select (select count(*) from pg_namespace)::int as schemas, (select count(*) from acme_sales.orders)::int as orders");
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme__admin");
      await c.query("savepoint t");
      await expect(c.query(sql, args as unknown[])).rejects.toMatchObject({ code });
      await c.query("rollback to savepoint t");
    });
    const after = await db.admin.query("select (select count(*) from pg_namespace)::int as schemas, (select count(*) from acme_sales.orders)::int as orders");
    expect(after.rows).toEqual(before.rows);
  });
});

describe("pipeline definitions", () => {
  const models = (list: { name: string; sql: string }[]) => ({ models: list });

  test.each([
    ["a cycle", models([{ name: "a", sql: "select * from {{ ref('b') }}" }, { name: "b", sql: "select * from {{ ref('a') }}" }]), /cycle/],
    ["an unknown ref", models([{ name: "a", sql: "select * from {{ ref('nope') }}" }]), /refers to nope/],
    ["an unknown entity", models([{ name: "a", sql: "select * from {{ source('shop', 'invoices') }}" }]), /no entity invoices/],
    ["Jinja statements", models([{ name: "a", sql: "{% if true %}select 1{% endif %}" }]), /Jinja statements/],
    ["another Jinja call", models([{ name: "a", sql: "select {{ var('x') }}" }]), /ref\('model'\)|calls var/],
    ["incremental", models([{ name: "a", sql: "{{ config(materialized='incremental') }} select 1" }]), /only table and view/],
    ["a secret in the definition", { source: { kind: "http", base_url: "http://x", password: "hunter2" } }, /secret value/],
    ["a bad schedule", { schedule: "every minute" }, /cron/],
    ["a target schema of another tenant", { target_schema: "globex_ops" }, /not one of your tenant/],
  ])("refuses %s with a clear message", async (_what, overrides, message) => {
    await expect(definePipeline("acme", { name: "bad_one", ...overrides })).rejects.toThrow(message);
  });

  test("models come back in dependency order; viewers and analysts cannot define pipelines", async () => {
    await definePipeline("acme");
    const { rows } = await db.admin.query("select name, build_order, materialized from sextant.pipeline_models order by build_order, name");
    expect(rows.map((r) => r.name)).toEqual(["customer_revenue", "top_customers"]);
    expect(rows[1]).toMatchObject({ materialized: "view", build_order: 1 });
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme__analyst");
      await expect(c.query("select sextant.create_pipeline('{\"name\": \"x\"}')")).rejects.toMatchObject({ code: "SX403" });
    });
  });

  test("secrets are stored encrypted and returned by nothing a tenant can call", async () => {
    await definePipeline("acme");
    const { rows } = await db.admin.query("select ciphertext from sextant_private.pipeline_secrets");
    expect(rows.length).toBeGreaterThan(0);
    expect(Buffer.from(rows[0].ciphertext).toString("latin1")).not.toContain("shop-secret-token");
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme__admin");
      const listed = JSON.stringify((await c.query("select * from sextant.list_pipelines()")).rows);
      const stored = JSON.stringify((await c.query("select * from sextant.pipelines")).rows);
      expect(listed + stored).not.toContain("shop-secret-token");
      await refused(c, "select * from sextant_private.pipeline_secrets", "42501");
      await refused(c, "select sextant_private.claim_run(1, 'me', 1)", "42501");
      // store_secret cannot write into a pipeline the caller did not just update as its admin.
      await refused(c, "select sextant_exec.store_secret(p.id, 'x', 'y') from sextant.pipelines p limit 1", "SX403");
    });
  });
});

describe("schedules", () => {
  test.each([
    ["* * * * *", "2026-03-04T05:06:00Z", true],
    ["0 * * * *", "2026-03-04T05:00:00Z", true],
    ["0 * * * *", "2026-03-04T05:01:00Z", false],
    ["*/15 8-18 * * 1-5", "2026-03-04T08:45:00Z", true],
    ["*/15 8-18 * * 1-5", "2026-03-07T08:45:00Z", false],
    ["30 2 1,15 * *", "2026-03-15T02:30:00Z", true],
    ["0 0 * * 7", "2026-03-08T00:00:00Z", true],
  ])("cron %s at %s: %s", async (expr, at, expected) => {
    const { rows } = await db.admin.query("select sextant_exec.cron_matches($1, $2) as m", [expr, at]);
    expect(rows[0].m).toBe(expected);
  });

  test("the tick queues due pipelines once, marked as scheduled", async () => {
    await definePipeline("acme", { name: "hourly", schedule: "0 * * * *" });
    await db.admin.query("select sextant_private.scheduler_tick('2026-03-04T05:00:00Z')");
    await db.admin.query("select sextant_private.scheduler_tick('2026-03-04T05:00:00Z')");
    await db.admin.query("select sextant_private.scheduler_tick('2026-03-04T05:01:00Z')");
    const { rows } = await db.admin.query(
      "select r.trigger, r.status from sextant.materialization_runs r join sextant.pipelines p on p.id = r.pipeline_id where p.name = 'hourly'");
    expect(rows).toEqual([{ trigger: "schedule", status: "queued" }]);
    const job = await db.admin.query("select count(*)::int as n from graphile_worker.jobs where task_identifier = 'sextant_materialize'");
    expect(job.rows[0].n).toBeGreaterThanOrEqual(1);
  });
});

