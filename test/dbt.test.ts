import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { projectRoot } from "../src/db/paths.ts";
import { loadDbtArtifacts } from "../src/dbt/loadArtifacts.ts";
import { runCli } from "./helpers/cli.ts";
import { asRole, createToken, withTx } from "./helpers/db.ts";
import { loadManifest, manifestV12, modelNode } from "./helpers/dbt.ts";
import { callOk, callRows, connectHttp, textOf } from "./helpers/mcpClient.ts";
import { useTestServer } from "./helpers/setup.ts";
import { gql } from "./helpers/graphql.ts";

// Real dbt artifacts made by other people (test/fixtures/dbt, see each SOURCES.md).
const FIXTURES = path.resolve(projectRoot, "test/fixtures/dbt");

const { db, server } = useTestServer();
let acme: Client;

async function load(tenant: string, dir: string, project?: string) {
  const client = new pg.Client({ connectionString: db.adminUrl });
  await client.connect();
  try {
    return await loadDbtArtifacts(client, { tenant, dir: path.join(FIXTURES, dir), project });
  } finally {
    await client.end();
  }
}

const modelCount = async (tenant: string, project: string) =>
  (await db.admin.query(
    `select count(*)::int as n from sextant.dbt_nodes n join sextant.dbt_projects p on p.id = n.project_id
     where p.tenant_slug = $1 and p.project_name = $2 and n.resource_type = 'model'`,
    [tenant, project],
  )).rows[0].n;

beforeAll(async () => {
  const r = await runCli(["dbt", "load", "--tenant", "acme", path.join(FIXTURES, "tuva")], { DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn" });
  if (r.code !== 0) throw new Error(r.stderr);
  acme = (await connectHttp(server.url, await createToken(db, "acme", "dbt-analyst"))).client;
}, 180_000);
afterAll(async () => {
  await acme?.close();
});

describe("loading artifacts", () => {
  test("the CLI loads Tuva (manifest v8 + catalog + run_results) for a tenant", async () => {
    expect(await modelCount("acme", "the_tuva_project")).toBe(307);
    const { rows } = await db.admin.query(
      "select dbt_version, manifest_schema from sextant.dbt_projects where tenant_slug = 'acme' and project_name = 'the_tuva_project'",
    );
    expect(rows[0]).toEqual({ dbt_version: "1.4.9", manifest_schema: "https://schemas.getdbt.com/dbt/manifest/v8.json" });
    const ephemeral = await db.admin.query(
      "select count(*)::int as n from sextant.dbt_nodes where materialization = 'ephemeral' and relation_name is null and tenant_slug = 'acme'",
    );
    expect(ephemeral.rows[0].n).toBe(42);
    const runs = await db.admin.query("select count(*)::int as n from sextant.dbt_nodes where last_run_status = 'success' and tenant_slug = 'acme'");
    expect(runs.rows[0].n).toBeGreaterThan(300);
  });

  test.each([
    ["tuva/versions/v7-dbt-1.3.1", "tuva_v7", 291],
    ["tuva/versions/v9-dbt-1.5.1", "tuva_v9", 287],
    ["tuva/versions/v10-dbt-1.6.2", "tuva_v10", 234],
    ["fivetran-recurly", "recurly_v12", 49],
    ["fivetran-recurly/v11-dbt-1.7.9", "recurly_v11", 48],
    ["cagov-dse-analytics", "cagov", 29],
  ])("loads %s (gzipped or not) with every model", async (dir, project, models) => {
    const result = await load("globex", dir, project);
    expect(result.project).toBe(project);
    expect(await modelCount("globex", project)).toBe(models);
  });

  test("a project's name comes from the manifest when it has one (v10+)", async () => {
    expect((await load("demo", "cagov-dse-analytics")).project).toBe("dse_analytics");
  });

  test("reloading replaces the project; a broken load changes nothing", async () => {
    const before = await modelCount("globex", "cagov");
    const broken = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-broken-"));
    fs.writeFileSync(path.join(broken, "manifest.json"), fs.readFileSync(path.join(FIXTURES, "cagov-dse-analytics/manifest.json"), "utf8").slice(0, 200_000));
    const client = new pg.Client({ connectionString: db.adminUrl });
    await client.connect();
    await expect(loadDbtArtifacts(client, { tenant: "globex", dir: broken, project: "cagov" })).rejects.toMatchObject({ code: "SX400" });
    await expect(loadDbtArtifacts(client, { tenant: "globex", dir: os.tmpdir() + "/nope", project: "cagov" })).rejects.toMatchObject({ code: "SX404" });
    await client.end();
    expect(await modelCount("globex", "cagov")).toBe(before);
    await load("globex", "cagov-dse-analytics", "cagov");
    expect(await modelCount("globex", "cagov")).toBe(before);
    // The search index is rebuilt with the project, not added to.
    const postings = await db.admin.query(
      "select count(*)::int as n, count(distinct p.project_id)::int as projects from sextant.dbt_postings as p join sextant.dbt_projects as d on d.id = p.project_id where d.tenant_slug = 'globex' and d.project_name = 'cagov'");
    expect(postings.rows[0]).toMatchObject({ projects: 1 });
    await load("globex", "cagov-dse-analytics", "cagov");
    const again = await db.admin.query(
      "select count(*)::int as n from sextant.dbt_postings as p join sextant.dbt_projects as d on d.id = p.project_id where d.tenant_slug = 'globex' and d.project_name = 'cagov'");
    expect(again.rows[0].n).toBe(postings.rows[0].n);
    const staged = await db.admin.query("select count(*)::int as n from sextant_private.dbt_load_items");
    expect(staged.rows[0].n).toBe(0);
  });

  test("two tenants load at once: both finish, and each searches only its own project", async () => {
    await db.admin.query("select sextant_private.create_tenant('initech', 'Initech', array[]::text[])");
    const [g, d] = await Promise.all([load("globex", "fivetran-recurly", "recurly_parallel"), load("initech", "fivetran-recurly", "recurly_parallel")]);
    expect(g.project).toBe("recurly_parallel");
    expect(d.project).toBe("recurly_parallel");
    for (const tenant of ["globex", "initech"]) {
      await withTx(db.auth, async (client) => {
        await asRole(client, `sextant_t_${tenant}`);
        const { rows } = await client.query("select distinct project_name from sextant.search_dbt_models('recurly subscription', 20)");
        expect(rows.map((r) => r.project_name)).toContain("recurly_parallel");
        const own = await client.query("select count(distinct tenant_slug)::int as n from sextant.dbt_postings");
        expect(own.rows[0].n).toBe(1);
      });
    }
    const nodes = await db.admin.query(
      "select p.tenant_slug, count(*)::int as n from sextant.dbt_nodes as n join sextant.dbt_projects as p on p.id = n.project_id where p.project_name = 'recurly_parallel' group by 1 order by 1");
    expect(nodes.rows).toHaveLength(2);
    expect(nodes.rows[0].n).toBe(nodes.rows[1].n);
  });

  test("the CLI explains a missing directory without a stack", async () => {
    const r = await runCli(["dbt", "load", "--tenant", "acme", "/nonexistent"], { DATABASE_URL: db.adminUrl });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no manifest.json in \/nonexistent/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});

describe("dbt tools", () => {
  test("list_dbt_models filters by materialization and schema", async () => {
    const { rows } = (await callOk(acme, "list_dbt_models", { materialization: "ephemeral", max_results: 1000 })) as { rows: { materialization: string }[] };
    expect(rows).toHaveLength(42);
    const core = (await callOk(acme, "list_dbt_models", { schema: "core", max_results: 1000 })) as { rows: { name: string }[] };
    expect(core.rows.map((r) => r.name)).toContain("core__condition");
  });

  test("search_dbt_models ranks, tolerates typos and says which fields matched", async () => {
    const hits = (await callOk(acme, "search_dbt_models", { query: "hospital readmission summary" })) as { rows: { name: string; matched_fields: string[] }[] };
    expect(hits.rows.slice(0, 5).map((h) => h.name)).toContain("readmissions__readmission_summary");
    expect(hits.rows[0]!.matched_fields.length).toBeGreaterThan(0);
    const typo = (await callOk(acme, "search_dbt_models", { query: "readmision sumary" })) as { rows: { name: string }[] };
    expect(typo.rows.slice(0, 5).map((h) => h.name)).toContain("readmissions__readmission_summary");
    const none = (await callOk(acme, "search_dbt_models", { query: "zzzz qqqq" })) as { rows: unknown[] };
    expect(none.rows).toEqual([]);
  });

  test("get_model_details: columns with tests, lineage both ways, SQL and a Mermaid diagram", async () => {
    const r = await acme.callTool({ name: "get_model_details", arguments: { model: "core__condition", lineage_depth: 1 } });
    const d = r.structuredContent as Record<string, any>;
    expect(d).toMatchObject({ name: "core__condition", materialization: "table", resource_type: "model", project_name: "the_tuva_project" });
    expect(d.columns.find((c: { name: string }) => c.name === "condition_id").tests).toContain("unique");
    expect(d.upstream.map((u: { name: string }) => u.name)).toEqual(expect.arrayContaining(["core__stg_claims_condition", "core__stg_clinical_condition"]));
    expect(d.downstream.length).toBeGreaterThanOrEqual(7);
    expect(d.sql_is_compiled).toBe(true);
    expect(textOf(r)).toMatch(/```mermaid\nflowchart LR/);
    const missing = await acme.callTool({ name: "get_model_details", arguments: { model: "nosuch" } });
    expect(textOf(missing)).toMatch(/SX404: no dbt model named nosuch/);
  });

  test("get_project_summary reports counts and documentation coverage", async () => {
    const { rows } = (await callOk(acme, "get_project_summary")) as { rows: Record<string, any>[] };
    expect(rows).toHaveLength(1);
    expect(rows[0]!.counts_by_type).toMatchObject({ model: 307, seed: 77, test: 57 });
    expect(rows[0]!.models_documented).toBeGreaterThan(0.5);
  });

  test("describe_table shows the dbt model that builds a table", async () => {
    await db.admin.query("select sextant_private.map_schema('acme', 'core')");
    await db.admin.query("set role sextant_owner; create table core.condition (condition_id text); reset role; select sextant_private.apply_table_filters('acme')");
    const r = await acme.callTool({ name: "describe_table", arguments: { table: "core.condition" } });
    expect((r.structuredContent as { dbt: { unique_id: string } }).dbt.unique_id).toBe("model.the_tuva_project.core__condition");
    expect(textOf(r)).toContain("dbt: model.the_tuva_project.core__condition (table)");
  });

  test("hostile questions: each is answered or refused in one clear line, never a stack or a long wait", async () => {
    const corpus = [
      "", "   ", "'; drop table sextant.dbt_nodes; --", "!!! & | <-> :* () \\ ''", "readmission\u0000summary",
      "%_%", "claims ".repeat(140), "наблюдение 病院 readmission", "<script>alert(1)</script>", "a:* & !b",
    ];
    for (const query of corpus) {
      const started = Date.now();
      const result = await acme.callTool({ name: "search_dbt_models", arguments: { query, max_results: 5 } });
      expect(Date.now() - started).toBeLessThan(5_000);
      const text = textOf(result);
      expect(text).not.toMatch(/at .*\.(ts|js):\d+/);
      // A refusal is short: Sextant's own in up to 3 lines, PostgreSQL's fenced (3 lines of fence around it).
      if (result.isError) expect(text.split("\n").length).toBeLessThanOrEqual(/^error SX/.test(text) ? 3 : 7);
    }
    // Over 1,000 characters is refused with the reason, at every door.
    const long = await acme.callTool({ name: "search_dbt_models", arguments: { query: "readmission ".repeat(200) } });
    expect(long.isError).toBe(true);
    expect(textOf(long)).toMatch(/too long \(2400 characters; at most 1,000\)/);
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      await expect(client.query("select * from sextant.search_dbt_models(repeat('x ', 600))")).rejects.toMatchObject({ code: "SX400" });
    });
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      await expect(client.query("select * from sextant.search_knowledge(repeat('x ', 600))")).rejects.toMatchObject({ code: "SX400" });
    });
    // Out-of-range result counts are clamped, not errors.
    const few = (await callOk(acme, "search_dbt_models", { query: "claim", max_results: -3 })) as { rows: unknown[] };
    expect(few.rows).toHaveLength(1);
  });

  test("another tenant never sees the project, through MCP, GraphQL or SQL", async () => {
    const demo = (await connectHttp(server.url, await createToken(db, "demo", "dbt-demo"))).client;
    const hits = (await callOk(demo, "search_dbt_models", { query: "readmission" })) as { rows: unknown[] };
    expect(hits.rows).toEqual([]);
    await demo.close();
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_demo");
      const { rows } = await client.query("select count(*)::int as n from sextant.dbt_nodes where tenant_slug = 'acme'");
      expect(rows[0].n).toBe(0);
      // The search index (postings, document frequencies) is tenant data too.
      for (const table of ["dbt_postings", "dbt_lexemes"]) {
        const other = await client.query(`select count(*)::int as n from sextant.${table} where tenant_slug = 'acme'`);
        expect(other.rows[0].n).toBe(0);
      }
    });
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      const own = await client.query("select count(*)::int as n from sextant.dbt_postings where term = 'readmiss'");
      expect(own.rows[0].n).toBeGreaterThan(0);
    });
    const { body } = await gql(server.url, await createToken(db, "acme", "dbt-gql"),
      '{ searchDbtModels(query: "readmission", maxResults: 3) { nodes { name matchedFields } } }');
    expect(body.data.searchDbtModels.nodes).toHaveLength(3);
  });
});

describe("a hand-made project: semantic models, dbt-marked sensitive columns, drift", () => {
  // No shared fixture has semantic models; this small manifest (v12) is written by the test.
  const manifest = manifestV12("acme_handmade", {
    nodes: {
      "model.acme_handmade.orders": modelNode("acme_handmade", "acme_sales", "orders", {
        description: "Acme orders as the finance team sees them.",
        columns: {
          id: { description: "Order id", data_type: "integer" },
          customer: { description: "Customer full name", data_type: "text", meta: { pii: true } },
          discount: { description: "Discount granted", data_type: "numeric" },
        },
      }),
    },
    semantic_models: {
      "semantic_model.acme_handmade.orders_sm": {
        unique_id: "semantic_model.acme_handmade.orders_sm", name: "orders_sm", resource_type: "semantic_model",
        package_name: "acme_handmade", description: "Order facts with revenue measures", label: "Orders",
        depends_on: { nodes: ["model.acme_handmade.orders"] }, original_file_path: "models/sm.yml",
      },
    },
    metrics: {
      "metric.acme_handmade.revenue": {
        unique_id: "metric.acme_handmade.revenue", name: "revenue", resource_type: "metric", package_name: "acme_handmade",
        description: "Total order revenue", label: "Revenue", depends_on: { nodes: ["semantic_model.acme_handmade.orders_sm"] },
      },
    },
  });

  test("loads semantic models and metrics, flags and masks dbt-marked columns, reports drift", async () => {
    await loadManifest(db, manifest, { tenant: "acme" });

    const sm = (await callOk(acme, "list_dbt_models", { resource_type: "semantic_model" })) as { rows: { name: string }[] };
    expect(sm.rows.map((r) => r.name)).toEqual(["orders_sm"]);
    const details = (await callOk(acme, "get_model_details", { model: "model.acme_handmade.orders" })) as { downstream: { name: string }[] };
    expect(details.downstream.map((d) => d.name)).toEqual(["orders_sm", "revenue"]);

    const d = (await callOk(acme, "describe_table", { table: "acme_sales.orders" })) as {
      columns: { name: string; sensitive?: boolean }[];
      dbt: { unique_id: string; drift: Record<string, unknown> };
    };
    expect(d.dbt.unique_id).toBe("model.acme_handmade.orders");
    expect(d.columns.find((c) => c.name === "customer")?.sensitive).toBe(true);
    expect(d.dbt.drift).toEqual({ documented_but_missing: ["discount"], present_but_undocumented: ["amount"] });
    const sample = (await callRows(acme, "sample_table", { table: "acme_sales.orders", n: 2 })) as { rows: Record<string, unknown>[] };
    expect(sample.rows.every((r) => r.customer === "[masked]")).toBe(true);
    const meta = (await callOk(acme, "get_metadata", { schema: "acme_sales" })) as { tables: { table: string; columns: { name: string; sensitive?: boolean; samples?: unknown }[] }[] };
    const customer = meta.tables.find((t) => t.table === "acme_sales.orders")!.columns.find((c) => c.name === "customer")!;
    expect(customer).toMatchObject({ sensitive: true });
    expect(customer.samples).toBeUndefined();
  });
});
