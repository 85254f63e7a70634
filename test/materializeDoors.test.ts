import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createPipeline } from "../src/cli/pipeline.ts";
import { readPipelineFile } from "../src/pipelines/definition.ts";
import { pollRun } from "../src/pipelines/pollRun.ts";
import { runCli } from "./helpers/cli.ts";
import { createToken } from "./helpers/db.ts";
import { gql as gqlRequest } from "./helpers/graphql.ts";
import { callOk, connectHttp, stdioMcpClient, textOf } from "./helpers/mcpClient.ts";
import { EXAMPLE_PIPELINE as EXAMPLE, usePipelineFile } from "./helpers/pipelines.ts";
import { useServer } from "./helpers/setup.ts";

// Pipelines through every door: the CLI (`sextant pipeline`, its YAML file), an agent over MCP
// (HTTP and stdio, with progress while it waits) and GraphQL.

const { db, api, workers, provision, definePipeline, waitFor } = usePipelineFile();
const startTestWorker = (staleMs?: number) => workers.start(staleMs === undefined ? {} : { staleMs });

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
  const server = useServer(db);
  let agent: Client;
  let viewer: Client;
  beforeAll(async () => {
    agent = (await connectHttp(server.url, await createToken(db, "acme", "mcp-analyst", "analyst"))).client;
    viewer = (await connectHttp(server.url, await createToken(db, "acme", "mcp-viewer", "viewer"))).client;
  });
  afterAll(async () => {
    await agent?.close();
    await viewer?.close();
  });

  test("provisions a schema, runs a pipeline, watches it, and queries the result", async () => {
    const schema = await callOk(agent, "provision_schema", { name: "agent_work", ttl_hours: 24 });
    expect(schema).toMatchObject({ schema_name: "t_acme__agent_work", provisioned: true });
    await definePipeline("acme", { name: "agent_pipeline", target_schema: "t_acme__agent_work" });
    const listed = (await callOk(agent, "list_pipelines")) as { rows: { name: string }[] };
    expect(listed.rows.map((r) => r.name)).toContain("agent_pipeline");
    await startTestWorker();
    const run = (await callOk(agent, "run_materialization", { pipeline: "agent_pipeline", entities: ["customers", "orders"] })) as { run_id: number };
    const s = await pollRun(async () => (await callOk(agent, "get_materialization_status", { run_id: run.run_id })) as { status: string },
      { deadline: Date.now() + 30_000, intervalMs: 150 });
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
    const { client, transport } = stdioMcpClient(db.adminUrl, ["--tenant", "acme", "--role", "analyst"], { SEXTANT_WORKER: "0" });
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
    const gql = async (token: string, query: string, variables: Record<string, unknown> = {}) =>
      (await gqlRequest(server.url, token, query, variables)).body;
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
