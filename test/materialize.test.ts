import { Client as McpClient, type Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { asTenant, createPipeline } from "../src/cli/pipeline.ts";
import { startShopApi } from "../src/demo/shopApi.ts";
import { readPipelineFile } from "../src/pipelines/definition.ts";
import { type WorkerHandle } from "../src/worker/index.ts";
import { startTestWorker as startWorkerOn } from "./helpers/worker.ts";
import { asRole, createTestDatabase, createToken, withTx, type TestDatabase } from "./helpers/db.ts";
import { runCli, SEXTANT_BIN } from "./helpers/cli.ts";
import { EXAMPLE_PIPELINE, pipelineHelpers, refusedInTx as refused } from "./helpers/pipelines.ts";
import { callOk, connectHttp, textOf } from "./helpers/mcpClient.ts";
import { startTestServer } from "./helpers/server.ts";

let db: TestDatabase;
let api: Awaited<ReturnType<typeof startShopApi>>;
let worker: WorkerHandle | undefined;
const silent = pino({ level: "silent" });
const EXAMPLE = EXAMPLE_PIPELINE;
const { asAdmin, provision, definePipeline, requestRun, status, waitFor, waitUntil, count } = pipelineHelpers(() => db, () => api.url);

async function startTestWorker(staleMs = 30000) {
  worker = await startWorkerOn(db, { concurrency: 2, staleMs, allowHosts: ["127.0.0.1:*"] });
  return worker;
}

beforeAll(async () => {
  db = await createTestDatabase();
  api = await startShopApi({ rateLimitEvery: 7, failPageOnce: 3, token: "shop-secret-token" });
  await provision("acme", "shop_api");
});
afterEach(async () => {
  await worker?.stop();
  worker = undefined;
});
afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await db?.drop();
});

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

describe("runs", () => {
  test("a run loads both entities through 429s and a failing page, builds the models, and reports freshness", async () => {
    await definePipeline("acme");
    await startTestWorker();
    const runId = await requestRun("acme", "shop_api");
    const done = await waitFor(runId, ["succeeded", "failed"]);
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(done.progress.customers).toMatchObject({ rows: 120, done: true });
    expect(done.progress.orders).toMatchObject({ rows: 400, done: true });
    expect(await count("t_acme__shop_api.customers")).toBe(120);
    expect(await count("t_acme__shop_api.orders")).toBe(400);
    // Inferred columns: camelCase to snake_case, nested objects as jsonb, the record kept in _raw.
    const cols = (await db.admin.query(
      "select column_name, data_type from information_schema.columns where table_schema = 't_acme__shop_api' and table_name = 'customers' order by ordinal_position",
    )).rows;
    expect(cols).toEqual(expect.arrayContaining([
      { column_name: "id", data_type: "bigint" },
      { column_name: "signed_up_at", data_type: "timestamp with time zone" },
      { column_name: "vip", data_type: "boolean" },
      { column_name: "address", data_type: "jsonb" },
      { column_name: "_raw", data_type: "jsonb" },
    ]));
    // The models, readable by the tenant (and only by it).
    await withTx(db.auth, async (c) => {
      await asRole(c, "sextant_t_acme");
      const top = (await c.query("select * from sextant.query('select count(*) as n from t_acme__shop_api.top_customers')")).rows[0];
      expect(top.rows[0].n).toBe(10);
      const d = (await c.query("select freshness from sextant.describe_table('t_acme__shop_api.customer_revenue')")).rows[0];
      expect(d.freshness).toMatchObject({ pipeline: "shop_api", run_id: runId, kind: "model", row_count: 120 });
      const listed = (await c.query("select * from sextant.list_tables('t_acme__shop_api')")).rows;
      expect(listed.find((t) => t.table_name === "orders")).toMatchObject({ loaded_by_run: runId, rows_changed: 400 });
      // The models' docs are indexed like a dbt project: search, details with lineage, describe_table.
      const hits = (await c.query("select * from sextant.search_dbt_models('revenue per customer', 5)")).rows;
      expect(hits[0]).toMatchObject({ name: "customer_revenue" });
      const details = (await c.query("select * from sextant.get_model_details('customer_revenue')")).rows[0];
      expect(JSON.stringify(details)).toContain("source.pipeline_shop_api.shop.orders");
      expect(JSON.stringify(details)).toMatch(/top_customers/);
      const described = (await c.query("select dbt from sextant.describe_table('t_acme__shop_api.customer_revenue')")).rows[0];
      expect(JSON.stringify(described.dbt)).toMatch(/Revenue and number of paid orders/);
      expect(JSON.stringify(described.dbt)).toMatch(/not_null/);
      await asRole(c, "sextant_t_globex");
      await refused(c, "select * from t_acme__shop_api.customers", "42501");
      expect((await c.query("select count(*)::int as n from sextant.search_dbt_models('revenue per customer', 5)")).rows[0].n).toBe(0);
    });
    // Same data again: nothing changed.
    const again = await requestRun("acme", "shop_api");
    await waitFor(again, ["succeeded"]);
    const fresh = (await db.admin.query("select rows_changed, run_id from sextant.materialized_tables where table_name = 'orders'")).rows[0];
    expect(fresh).toMatchObject({ rows_changed: 0, run_id: again });
    expect(await db.admin.query("select count(*)::int as n from pg_namespace where nspname like 'sextant_stage_%'").then((r) => r.rows[0].n)).toBe(0);
  });

  test("two runs of one pipeline requested at once: the second is refused while the first is active", async () => {
    await definePipeline("acme");
    const first = await requestRun("acme", "shop_api");
    await expect(requestRun("acme", "shop_api")).rejects.toMatchObject({ code: "SX409", message: expect.stringContaining(`run ${first}`) });
    await asAdmin("acme", (c) => c.query("select sextant.cancel_materialization($1)", [first]));
  });

  test("a queued run that is cancelled never starts", async () => {
    await definePipeline("acme");
    const runId = await requestRun("acme", "shop_api");
    const row = await asAdmin("acme", async (c) => (await c.query("select * from sextant.cancel_materialization($1)", [runId])).rows[0]);
    expect(row.status).toBe("cancelled");
    await startTestWorker();
    await new Promise((r) => setTimeout(r, 1500));
    const s = await status(runId);
    expect(s).toMatchObject({ status: "cancelled", started_at: null });
  });

  test("a running run that is cancelled stops at the next batch and leaves the old tables in place", async () => {
    const slow = await startShopApi({ delayMs: 150, customers: 2000, token: "shop-secret-token" });
    try {
      await definePipeline("acme", {}, slow.url);
      await startTestWorker();
      const before = await count("t_acme__shop_api.customers");
      const runId = await requestRun("acme", "shop_api");
      await waitFor(runId, ["running"]);
      await new Promise((r) => setTimeout(r, 600));
      await asAdmin("acme", (c) => c.query("select sextant.cancel_materialization($1)", [runId]));
      const s = await waitFor(runId, ["cancelled", "succeeded", "failed"]);
      expect(s.status).toBe("cancelled");
      expect(s.progress.customers.rows).toBeLessThan(2000);
      expect(await count("t_acme__shop_api.customers")).toBe(before);
    } finally {
      await slow.close();
    }
  });

  test.each([
    ["a source that returns garbage", { garbage: true }, {}, /did not return JSON/],
    ["a records path that is not there", {}, { entities: [{ name: "customers", path: "/customers", records_path: "items" }], models: [] }, /no array at "items"/],
    ["a page over the size limit", {}, { source: { name: "shop", kind: "http", base_url: "${URL}", max_page_bytes: 1000, headers: { authorization: { secret: "shop_auth_header" } } } }, /over the limit/],
    ["a model with a syntax error", {}, { models: [{ name: "broken", sql: "select from from {{ source('shop', 'customers') }}" }] }, /model broken/],
    ["a model that reads another tenant's table", {}, { models: [{ name: "snoop", sql: "select * from globex_ops.shipments" }] }, /permission denied|globex_ops/],
    ["a model with a data-modifying CTE", {}, { models: [{ name: "evil", sql: "with d as (delete from t_acme__shop_api.customers returning *) select * from d" }] }, /modifies data|writes or locks/],
    ["a model that switches role", {}, { models: [{ name: "esc", sql: "select set_config('role', 'sextant_t_globex', true)" }] }, /set_config|not allowed/],
    ["a wrong credential", { token: "another-token" }, {}, /401/],
  ])("%s: the run fails with a reason and the old tables stay complete", async (_what, apiOpts, overrides, reason) => {
    const bad = await startShopApi({ token: "shop-secret-token", ...apiOpts });
    try {
      const o = JSON.parse(JSON.stringify(overrides).replace("${URL}", bad.url));
      await definePipeline("acme", o, bad.url);
      await startTestWorker();
      const before = await count("t_acme__shop_api.customers");
      const runId = await requestRun("acme", "shop_api");
      const s = await waitFor(runId, ["failed", "succeeded"]);
      expect(s.status).toBe("failed");
      expect(s.error).toMatch(reason);
      expect(await count("t_acme__shop_api.customers")).toBe(before);
      expect(await count("globex_ops.shipments")).toBe(20);
      expect(await db.admin.query("select count(*)::int as n from pg_namespace where nspname = $1", [`sextant_stage_${runId}`]).then((r) => r.rows[0].n)).toBe(0);
    } finally {
      await bad.close();
    }
  });

  test("a source on a private address is refused unless the operator allows the host", async () => {
    await definePipeline("acme");
    worker = await startWorkerOn(db);
    const runId = await requestRun("acme", "shop_api");
    const s = await waitFor(runId, ["failed", "succeeded"]);
    expect(s).toMatchObject({ status: "failed" });
    expect(s.error).toMatch(/private or loopback address/);
  });

  test("a transient failure on every try is retried by the queue, then the run fails with the reason", async () => {
    const down = await startShopApi({ rateLimitEvery: 1, token: "shop-secret-token" });
    try {
      await definePipeline("acme", { source: { name: "shop", kind: "http", base_url: down.url, max_retries: 1, headers: { authorization: { secret: "shop_auth_header" } } } }, down.url);
      await startTestWorker();
      const runId = await requestRun("acme", "shop_api");
      const first = await waitUntil(runId, (r) => r.attempts >= 1 && r.status === "queued" && r.error !== null);
      expect(first.error).toMatch(/attempt 1 failed: .*429/);
      expect(first.current_step).toBe("waiting to retry");
      // Skip the queue's backoff and make the next attempt the last one.
      await db.admin.query("update graphile_worker._private_jobs set run_at = now(), max_attempts = 2 where key = $1", [`sextant_run_${runId}`]);
      const last = await waitFor(runId, ["failed", "succeeded"]);
      expect(last).toMatchObject({ status: "failed", attempts: 2 });
      expect(last.error).toMatch(/429/);
    } finally {
      await down.close();
    }
  });
});

describe("attempts at one run", () => {
  test("an attempt the run was taken from cannot finish, end or report it — even from the same worker process", async () => {
    await definePipeline("acme");
    const runId = await requestRun("acme", "shop_api");
    const asWorker = async <T,>(fn: (c: import("pg").PoolClient) => Promise<T>) => {
      const c = await db.admin.connect();
      try {
        await c.query("begin; set local role sextant_worker");
        const out = await fn(c);
        await c.query("commit");
        return out;
      } catch (error) {
        await c.query("rollback");
        throw error;
      } finally {
        c.release();
      }
    };
    const claim = (worker: string) => asWorker(async (c) => (await c.query("select sextant_private.claim_run($1, $2, 1) as c", [runId, worker])).rows[0].c);
    expect((await claim("w1")).attempt).toBe(1);
    // Attempt 1 stalls: no heartbeat for an hour; the reaper hands the run back to the queue,
    // and the same worker process (same graphile-worker id) picks the job up again.
    await db.admin.query("update sextant.materialization_runs set heartbeat_at = now() - interval '1 hour' where id = $1", [runId]);
    await asWorker((c) => c.query("select sextant_private.reap_stale_runs(interval '1 minute')"));
    expect((await claim("w1")).attempt).toBe(2);
    // Attempt 1 wakes up: everything it tries is refused, attempt 2 is untouched.
    await expect(asWorker((c) => c.query("select sextant_private.finish_run($1, 'w1', 1, '[]')", [runId]))).rejects.toMatchObject({ code: "SX409" });
    expect((await asWorker((c) => c.query("select sextant_private.end_run($1, 'failed', 'late', 'w1', 1) as done", [runId]))).rows[0].done).toBe(false);
    expect((await asWorker((c) => c.query("select sextant_private.report_progress($1, 1, 'late step', null, null) as stop", [runId]))).rows[0].stop).toBe(true);
    expect((await asWorker((c) => c.query("select sextant_private.report_progress($1, 2, 'loading', null, null) as stop", [runId]))).rows[0].stop).toBe(false);
    expect(await status(runId)).toMatchObject({ status: "running", attempts: 2, current_step: "loading" });
    expect((await asWorker((c) => c.query("select sextant_private.end_run($1, 'failed', 'test over', 'w1', 2) as done", [runId]))).rows[0].done).toBe(true);
    expect(await status(runId)).toMatchObject({ status: "failed", error: "test over" });
  });
});

describe("HTTP pagination styles, rate limit, CSV over HTTP", () => {
  test("offset, next link in the body, Link header; requests spaced by requests_per_second; a CSV by URL", { timeout: 30_000 }, async () => {
    const times: number[] = [];
    const records = (from: number, n: number) => Array.from({ length: Math.max(0, Math.min(n, 45 - from)) }, (_, i) => ({ id: from + i + 1, label: `item ${from + i + 1}` }));
    const server = http.createServer((req, res) => {
      times.push(Date.now());
      const u = new URL(req.url!, "http://x");
      const send = (body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(200, { "content-type": u.pathname.endsWith(".csv") ? "text/csv" : "application/json", ...headers });
        res.end(typeof body === "string" ? body : JSON.stringify(body));
      };
      const page = Number(u.searchParams.get("page") ?? 1);
      if (u.pathname === "/offset") return send({ items: records(Number(u.searchParams.get("offset")), Number(u.searchParams.get("limit"))) });
      if (u.pathname === "/body-link") return send({ results: records((page - 1) * 10, 10), links: { next: page * 10 < 45 ? `/body-link?page=${page + 1}` : null } });
      if (u.pathname === "/header-link") {
        return send(records((page - 1) * 20, 20), page * 20 < 45 ? { link: `<http://127.0.0.1:${(server.address() as { port: number }).port}/header-link?page=${page + 1}>; rel="next"` } : {});
      }
      if (u.pathname === "/export.csv") return send("code,amount\nA,1.5\nB,2\nC,\n");
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      await provision("acme", "pages");
      const def = {
        name: "pages", target_schema: "t_acme__pages",
        source: { name: "api", kind: "http", base_url: base, requests_per_second: 20 },
        entities: [
          { name: "by_offset", path: "/offset", records_path: "items", pagination: { type: "offset", limit: 10 } },
          { name: "by_body_link", path: "/body-link", records_path: "results", pagination: { type: "next_link", next_path: "links.next" } },
          { name: "by_header_link", path: "/header-link", pagination: { type: "next_link" } },
        ],
      };
      const csv = { name: "csv_url", target_schema: "t_acme__pages", source: { name: "files", kind: "csv", base_url: base }, entities: [{ name: "export", url: "/export.csv" }] };
      await asAdmin("acme", async (c) => {
        await c.query("select sextant.create_pipeline($1)", [JSON.stringify(def)]);
        await c.query("select sextant.create_pipeline($1)", [JSON.stringify(csv)]);
      });
      await startTestWorker();
      const run = await waitFor(await requestRun("acme", "pages"), ["succeeded", "failed"]);
      expect(run.error).toBeNull();
      for (const t of ["by_offset", "by_body_link", "by_header_link"]) {
        expect(await count(`t_acme__pages.${t}`)).toBe(45);
        expect(await count(`(select distinct id from t_acme__pages.${t}) as d`)).toBe(45);
      }
      // 20 requests a second: no two requests of the run closer than ~50 ms (some slack for timers).
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(40);
      const csvRun = await waitFor(await requestRun("acme", "csv_url"), ["succeeded", "failed"]);
      expect(csvRun.error).toBeNull();
      expect((await db.admin.query("select code, amount from t_acme__pages.export order by code")).rows).toEqual([
        { code: "A", amount: "1.5" }, { code: "B", amount: "2" }, { code: "C", amount: null }]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe("CSV and PostgreSQL sources", () => {
  test("CSV files load with sampled types, fall back to text when a later value does not fit, and stay inside the file directory", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-csv-"));
    fs.mkdirSync(path.join(dir, "sub"));
    const lines = ["Id,Full Name,Signup Date,Score,Active"];
    for (let i = 1; i <= 5000; i++) lines.push(`${i},"Person ${i}, Jr.",2024-01-${String((i % 28) + 1).padStart(2, "0")},${i % 3 === 0 ? "" : i * 1.5},${i % 2 === 0}`);
    fs.writeFileSync(path.join(dir, "sub", "people.csv"), lines.join("\n") + "\n");
    const late = ["id,code"];
    for (let i = 1; i <= 4000; i++) late.push(`${i},${i === 3999 ? "N/A" : i}`);
    fs.writeFileSync(path.join(dir, "sub", "late.csv"), late.join("\n") + "\n");
    try {
      await provision("acme", "files");
      const def = { name: "files", target_schema: "t_acme__files", source: { name: "files", kind: "csv", directory: "sub" },
        entities: [{ name: "people", file: "people.csv" }, { name: "late", file: "late.csv" }], models: [] };
      await asAdmin("acme", (c) => c.query("select sextant.create_pipeline($1)", [JSON.stringify(def)]));
      worker = await startWorkerOn(db, { fileDir: dir });
      const run = await waitFor(await requestRun("acme", "files"), ["succeeded", "failed"]);
      expect(run.error).toBeNull();
      expect(run.progress.people).toMatchObject({ rows: 5000, done: true });
      const types = (await db.admin.query(
        "select table_name, column_name, data_type from information_schema.columns where table_schema = 't_acme__files' order by table_name, ordinal_position",
      )).rows.map((r) => `${r.table_name}.${r.column_name}:${r.data_type}`);
      expect(types).toEqual(["late.id:text", "late.code:text",
        "people.id:bigint", "people.full_name:text", "people.signup_date:date", "people.score:numeric", "people.active:boolean"]);
      expect(await count("t_acme__files.people where score is null")).toBe(1666);
      expect(await count("t_acme__files.late")).toBe(4000);

      const escape = { ...def, entities: [{ name: "passwd", file: "../../../../etc/passwd" }] };
      await asAdmin("acme", (c) => c.query("select sextant.create_pipeline($1)", [JSON.stringify(escape)]));
      const refusedRun = await waitFor(await requestRun("acme", "files"), ["succeeded", "failed"]);
      expect(refusedRun.error).toMatch(/outside the source directory|does not exist in the source directory/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a PostgreSQL source copies a query's result with the source's column types; its connection string is a secret", async () => {
    await provision("acme", "mirror");
    const def = { name: "mirror", target_schema: "t_acme__mirror", source: { name: "other", kind: "postgres", connection_string: { secret: "dsn" } },
      entities: [{ name: "big_orders", query: "select id, customer, amount, now()::date as seen_on from acme_sales.orders where amount >= 250" }],
      models: [{ name: "order_total", sql: "select sum(amount) as total, count(*) as n from {{ source('other', 'big_orders') }}" }] };
    await asAdmin("acme", async (c) => {
      await c.query("select sextant.create_pipeline($1)", [JSON.stringify(def)]);
      await c.query("select sextant.set_pipeline_secret('mirror', 'dsn', $1)", [db.adminUrl]);
    });
    await startTestWorker();
    const run = await waitFor(await requestRun("acme", "mirror"), ["succeeded", "failed"]);
    expect(run.error).toBeNull();
    const cols = (await db.admin.query(
      "select column_name, data_type from information_schema.columns where table_schema = 't_acme__mirror' and table_name = 'big_orders' order by ordinal_position",
    )).rows.map((r) => `${r.column_name}:${r.data_type}`);
    expect(cols).toEqual(["id:integer", "customer:text", "amount:numeric", "seen_on:date"]);
    const total = (await db.admin.query("select total::int, n from t_acme__mirror.order_total")).rows[0];
    expect(total).toEqual({ total: 9750, n: 26 });
    // A query that writes is refused by the source's read-only transaction.
    const writing = { ...def, entities: [{ name: "big_orders", query: "select lo_create(0) as id" }], models: [] };
    await asAdmin("acme", (c) => c.query("select sextant.create_pipeline($1)", [JSON.stringify(writing)]));
    const failed = await waitFor(await requestRun("acme", "mirror"), ["succeeded", "failed"]);
    expect(failed.error).toMatch(/read-only transaction/);
    expect(await count("acme_sales.orders")).toBe(50);
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

describe("a worker killed in the middle of a load", () => {
  test("the old tables stay readable and complete, the job is retried by another worker, and the run succeeds", { timeout: 90_000 }, async () => {
    // A first, complete load.
    await definePipeline("acme");
    await startTestWorker();
    await waitFor(await requestRun("acme", "shop_api"), ["succeeded"]);
    await worker!.stop();
    worker = undefined;
    const before = await count("t_acme__shop_api.customers");
    expect(before).toBe(120);

    const apiOpts = { delayMs: 60, customers: 1500, token: "shop-secret-token" };
    const slow = await startShopApi(apiOpts);
    const child = spawn(process.execPath, [SEXTANT_BIN, "worker"], {
      env: { ...process.env, DATABASE_URL: db.adminUrl, SEXTANT_SOURCE_ALLOW_HOSTS: "127.0.0.1:*", LOG_LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    try {
      await definePipeline("acme", {}, slow.url);
      const runId = await requestRun("acme", "shop_api");
      const mid = await waitUntil(runId, (r) => r.status === "running" && (r.progress.customers?.rows ?? 0) >= 100, 45000).catch((e) => {
        throw new Error(`${e.message}\nworker stderr: ${stderr}`);
      });
      expect(mid.worker_id).toBeTruthy();
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      // Readers still see the complete old table while the run is stuck with a dead worker.
      expect(await count("t_acme__shop_api.customers")).toBe(before);
      expect((await status(runId)).status).toBe("running");
      apiOpts.delayMs = 0; // the retry may go fast
      // Another worker notices the missing heartbeats and takes the job over.
      await startTestWorker(2000);
      const done = await waitFor(runId, ["succeeded", "failed"], 60000);
      expect(done.error).toBeNull();
      expect(done).toMatchObject({ status: "succeeded", attempts: 2 });
      expect(await count("t_acme__shop_api.customers")).toBe(1500);
    } finally {
      child.kill("SIGKILL");
      await slow.close();
    }
  });
});

describe("sextant pipeline (CLI)", () => {
  // Ten CLI processes, each migrating the database first: over a minute on a busy 2-core machine.
  test("create from YAML with a models folder, run --wait to the end, list; errors are one line", { timeout: 180_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-pipe-"));
    fs.mkdirSync(path.join(dir, "models"));
    fs.writeFileSync(path.join(dir, "models", "by_country.sql"), "select country, count(*) as customers from {{ source('shop', 'customers') }} group by country\n");
    fs.writeFileSync(path.join(dir, "pipe.yaml"), [
      "name: cli_pipe",
      "target_schema: t_acme__cli",
      "source: { name: shop, kind: http, base_url: '${SHOP_URL}', headers: { authorization: { secret: auth } } }",
      "entities:",
      "  - { name: customers, path: /customers, records_path: data, pagination: { type: page, size_param: per_page, size: 50 } }",
      "models: ./models",
      "secrets: { auth: { env: SHOP_AUTH } }",
    ].join("\n"));
    fs.writeFileSync(path.join(dir, "broken.yaml"), "name: [unclosed\n");
    const env = { DATABASE_URL: db.adminUrl, SHOP_URL: api.url, SHOP_AUTH: "Bearer shop-secret-token" };
    await provision("acme", "cli");
    try {
      const created = await runCli(["pipeline", "create", "--tenant", "acme", path.join(dir, "pipe.yaml")], env);
      expect(created.stderr).toBe("");
      expect(created.stdout).toMatch(/pipeline cli_pipe saved \(target t_acme__cli; 1 entities, 1 models, 1 secrets\)/);
      await startTestWorker();
      const ran = await runCli(["pipeline", "run", "--tenant", "acme", "cli_pipe", "--wait"], env);
      expect(ran.stdout).toMatch(/run \d+ queued\nrun \d+ succeeded in [\d.]+ s \(customers: 120 rows\)/);
      expect(ran.code).toBe(0);
      const provisioned = await runCli(["schema", "provision", "--tenant", "acme", "clitmp", "--ttl-hours", "2"], env);
      expect(provisioned.stdout).toMatch(/^schema t_acme__clitmp provisioned \(expires \d{4}-/);
      const dropped = await runCli(["schema", "teardown", "--tenant", "acme", "clitmp"], env);
      expect(dropped.stdout).toBe("schema t_acme__clitmp dropped\n");
      const list = await runCli(["pipeline", "list", "--tenant", "acme"], env);
      expect(list.stdout).toMatch(/cli_pipe\s+http\s+t_acme__cli\s+\d+\s+succeeded/);
      for (const [args, message] of [
        [["pipeline", "create", "--tenant", "acme", path.join(dir, "nope.yaml")], /^sextant: cannot read .*nope.yaml\n$/],
        [["pipeline", "create", "--tenant", "acme", path.join(dir, "broken.yaml")], /^sextant: .*broken.yaml is not valid YAML/],
        [["pipeline", "run", "--tenant", "acme", "no_such_pipeline"], /^sextant: pipeline no_such_pipeline does not exist\nhint: Call list_pipelines/],
        [["pipeline", "status", "--tenant", "globex", "1"], /^sextant: run 1 does not exist in tenant globex/],
      ] as const) {
        const r = await runCli([...args], env);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a worker that shuts down gracefully in the middle of a load", () => {
  test("puts the run back in the queue (not failed); the next worker finishes it", { timeout: 60_000 }, async () => {
    const apiOpts = { delayMs: 60, customers: 4000, pageSize: 25, token: "shop-secret-token" };
    const slow = await startShopApi(apiOpts);
    try {
      await provision("acme", "graceful");
      await definePipeline("acme", { name: "graceful", target_schema: "t_acme__graceful" }, slow.url);
      const first = await startTestWorker();
      const runId = await requestRun("acme", "graceful");
      await waitUntil(runId, (r) => r.status === "running" && (r.progress.customers?.rows ?? 0) >= 50);
      await first.stop(); // graceful: waits, then aborts the job after graphile-worker's timeout
      worker = undefined;
      const stopped = await status(runId);
      expect(stopped).toMatchObject({ status: "queued", current_step: "waiting to retry" });
      expect(stopped.error).toMatch(/worker shut down/);
      apiOpts.delayMs = 0; // the retry may go fast
      await db.admin.query("update graphile_worker._private_jobs set run_at = now() where key = $1", [`sextant_run_${runId}`]);
      await startTestWorker();
      const done = await waitFor(runId, ["succeeded", "failed"], 40_000).catch(async (e) => {
        const job = await db.admin.query("select j.*, q.locked_by as qlocked from graphile_worker._private_jobs j left join graphile_worker._private_job_queues q on q.id = j.job_queue_id where key = $1", [`sextant_run_${runId}`]);
        throw new Error(`${e.message}: ${JSON.stringify(job.rows)}`);
      });
      expect(done).toMatchObject({ status: "succeeded", error: null });
      expect(await count("t_acme__graceful.customers")).toBe(4000);
    } finally {
      await slow.close();
    }
  });
});

/** A run_materialization call with wait_seconds: it ended succeeded, after rising progress notifications. */
function expectWaitedWithProgress(result: Record<string, unknown>, progress: { progress: number; message?: string }[], pipeline: string) {
  expect(result.isError).toBeFalsy();
  expect(result.structuredContent).toMatchObject({ status: "succeeded", pipeline, entities: { customers: { rows: 120 } } });
  expect(progress.length).toBeGreaterThanOrEqual(2);
  // The client may handle the response before the last notification (its handler is then gone),
  // so the end is read from the result and the notifications are checked for the run's progress.
  expect(progress.some((p) => /^running: loading (customers|orders) \(\d+ rows loaded\)$/.test(p.message ?? ""))).toBe(true);
  for (let i = 1; i < progress.length; i++) expect(progress[i]!.progress).toBeGreaterThan(progress[i - 1]!.progress);
}

describe("an agent over MCP", () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let agent: Client;
  let viewer: Client;
  beforeAll(async () => {
    server = await startTestServer(db);
    agent = (await connectHttp(server.url, await createToken(db, "acme", "mcp-analyst", "analyst"))).client;
    viewer = (await connectHttp(server.url, await createToken(db, "acme", "mcp-viewer", "viewer"))).client;
  });
  afterAll(async () => {
    await agent?.close();
    await viewer?.close();
    await server?.close();
  });

  test("provisions a schema, runs a pipeline, watches it, and queries the result", async () => {
    const schema = await callOk(agent, "provision_schema", { name: "agent_work", ttl_hours: 24 });
    expect(schema).toMatchObject({ schema_name: "t_acme__agent_work", provisioned: true });
    await definePipeline("acme", { name: "agent_pipeline", target_schema: "t_acme__agent_work" });
    const listed = (await callOk(agent, "list_pipelines")) as { rows: { name: string }[] };
    expect(listed.rows.map((r) => r.name)).toContain("agent_pipeline");
    await startTestWorker();
    const run = (await callOk(agent, "run_materialization", { pipeline: "agent_pipeline", entities: ["customers", "orders"] })) as { run_id: number };
    let s: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) {
      s = await callOk(agent, "get_materialization_status", { run_id: run.run_id });
      if (["succeeded", "failed", "cancelled"].includes(s.status as string)) break;
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(s).toMatchObject({ status: "succeeded", pipeline: "agent_pipeline" });
    const q = await agent.callTool({ name: "query", arguments: { sql: "select count(*) as n from t_acme__agent_work.customer_revenue" } });
    expect(textOf(q)).toMatch(/\b120\b/);
    const denied = await viewer.callTool({ name: "run_materialization", arguments: { pipeline: "agent_pipeline" } });
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toMatch(/analyst or admin/);
    const cancel = await callOk(agent, "cancel_materialization", { run_id: run.run_id });
    expect(cancel).toMatchObject({ status: "succeeded", cancel_requested: false });
  });

  test("run_materialization with wait_seconds waits for the end, with progress notifications over stdio", { timeout: 60_000 }, async () => {
    await provision("acme", "stdio_wait");
    await definePipeline("acme", { name: "stdio_pipeline", target_schema: "t_acme__stdio_wait" });
    await startTestWorker();
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [SEXTANT_BIN, "mcp", "--tenant", "acme", "--role", "analyst"],
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn", SEXTANT_WORKER: "0" },
      stderr: "pipe",
    });
    const client = new McpClient({ name: "progress-test", version: "1.0.0" });
    await client.connect(transport);
    try {
      const progress: { progress: number; message?: string }[] = [];
      const result = await client.callTool({ name: "run_materialization", arguments: { pipeline: "stdio_pipeline", wait_seconds: 45 } }, undefined,
        { onprogress: (p) => void progress.push(p), timeout: 60_000 });
      expectWaitedWithProgress(result, progress, "stdio_pipeline");
      // Without wait_seconds the call returns at once, queued.
      const quick = await callOk(client, "run_materialization", { pipeline: "stdio_pipeline" });
      expect(quick).toMatchObject({ status: "queued" });
      await waitFor(quick.run_id as number, ["succeeded"]);
    } finally {
      await client.close();
    }
  });

  test("run_materialization with wait_seconds sends progress notifications over Streamable HTTP too", { timeout: 60_000 }, async () => {
    await provision("acme", "http_wait");
    await definePipeline("acme", { name: "http_pipeline", target_schema: "t_acme__http_wait" });
    await startTestWorker();
    const progress: { progress: number; message?: string }[] = [];
    const result = await agent.callTool({ name: "run_materialization", arguments: { pipeline: "http_pipeline", wait_seconds: 45 } }, undefined,
      { onprogress: (p) => void progress.push(p), timeout: 60_000 });
    expectWaitedWithProgress(result, progress, "http_pipeline");
  });

  test("GraphQL: an admin defines and runs a pipeline and reads its status; a viewer cannot run it", async () => {
    const gql = async (token: string, query: string, variables: Record<string, unknown> = {}) => {
      const res = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as { data?: any; errors?: { message: string }[] };
    };
    const admin = await createToken(db, "acme", "gql-admin", "admin");
    await provision("acme", "gql");
    process.env.SHOP_API_URL = api.url;
    process.env.SHOP_API_AUTH_HEADER = "x";
    const { definition } = readPipelineFile(EXAMPLE);
    const created = await gql(admin, `mutation($d: JSON!) { createPipeline(input: { definition: $d }) { result { name targetSchema } } }`,
      { d: { ...definition, name: "gql_pipeline", target_schema: "t_acme__gql", schedule: null } });
    expect(created.errors).toBeUndefined();
    expect(created.data.createPipeline.result).toEqual({ name: "gql_pipeline", targetSchema: "t_acme__gql" });
    const secret = await gql(admin, `mutation { setPipelineSecret(input: { pipeline: "gql_pipeline", name: "shop_auth_header", value: "Bearer shop-secret-token" }) { result } }`);
    expect(secret.errors).toBeUndefined();
    await startTestWorker();
    const ran = await gql(admin, `mutation { runMaterialization(input: { pipeline: "gql_pipeline" }) { result { rowId status } } }`);
    expect(ran.errors).toBeUndefined();
    const runId = ran.data.runMaterialization.result.rowId;
    await waitFor(runId, ["succeeded", "failed"]);
    const st = await gql(admin, `query($id: BigInt!) { getMaterializationStatus(runId: $id) { nodes { status pipeline entities } } }`, { id: String(runId) });
    expect(st.errors).toBeUndefined();
    expect(st.data.getMaterializationStatus.nodes[0]).toMatchObject({ status: "succeeded", pipeline: "gql_pipeline", entities: { customers: { rows: 120 } } });
    const viewerToken = await createToken(db, "acme", "gql-viewer", "viewer");
    const denied = await gql(viewerToken, `mutation { runMaterialization(input: { pipeline: "gql_pipeline" }) { result { rowId } } }`);
    expect(denied.errors?.[0]?.message).toMatch(/analyst or admin/);
  });
});

describe("the CLI's pipeline file", () => {
  test("the example pipeline file is read with its models folder, docs and secrets from the environment", async () => {
    process.env.SHOP_API_URL = api.url;
    process.env.SHOP_API_AUTH_HEADER = "Bearer shop-secret-token";
    const { definition, secrets } = readPipelineFile(EXAMPLE);
    expect(definition.models.map((m) => m.name)).toEqual(["customer_revenue", "top_customers"]);
    expect(definition.models[0]!.description).toMatch(/Revenue/);
    expect(secrets).toEqual({ shop_auth_header: "Bearer shop-secret-token" });
    expect(JSON.stringify(definition)).not.toContain("shop-secret-token");
    delete process.env.SHOP_API_AUTH_HEADER;
    expect(() => readPipelineFile(EXAMPLE)).toThrow(/SHOP_API_AUTH_HEADER/);
    const client = await db.admin.connect();
    try {
      process.env.SHOP_API_AUTH_HEADER = "Bearer shop-secret-token";
      const text = await createPipeline(client, "acme", EXAMPLE, {}).catch((e) => String(e.message));
      // The example targets the demo tenant's schema, which acme does not have.
      expect(text).toMatch(/target schema t_demo__shop_api is not one of your tenant's schemas/);
    } finally {
      client.release();
    }
  });
});
