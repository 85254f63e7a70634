import os from "node:os";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createToken } from "./helpers/db.ts";
import { eventually, gql } from "./helpers/graphql.ts";
import { connectHttp, textOf } from "./helpers/mcpClient.ts";
import { JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, startTestServer } from "./helpers/server.ts";
import { useTestServer } from "./helpers/setup.ts";

const { db, server } = useTestServer({ HOST: "0.0.0.0" });
let analyst: string;
let viewer: string;

beforeAll(async () => {
  analyst = await createToken(db, "acme", "metrics-analyst", "analyst");
  viewer = await createToken(db, "globex", "metrics-viewer", "viewer");
});

const scrape = async (headers: Record<string, string> = {}, base = server.url) => {
  const res = await fetch(`${base}/metrics`, { headers });
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
};

/** The value of one sample (name and exact label set as printed), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}

describe("GET /metrics", () => {
  test("counts every door's operations by tool, tenant and outcome, with latency and error codes", async () => {
    const { client } = await connectHttp(server.url, analyst);
    try {
      expect((await client.callTool({ name: "query", arguments: { sql: "select 1 as one" } })).isError).toBeFalsy();
      const refused = await client.callTool({ name: "query", arguments: { sql: "delete from acme_sales.orders" } });
      expect(textOf(refused)).toMatch(/^error SX400/);
    } finally {
      await client.close();
    }
    // One GraphQL request, three root fields: three operations.
    const r = await gql(server.url, viewer, '{ a: whoami { tenant } b: whoami { tenant } c: listSchemas { nodes { schemaName } } }');
    expect(r.status).toBe(200);
    // The upload door passes the same gate: a viewer is refused, counted and audited.
    const up = await fetch(`${server.url}/dbt/upload`, { method: "POST", headers: { authorization: `Bearer ${viewer}`, "content-type": "application/json" }, body: "{}" });
    expect(up.status).toBe(403);

    const { status, type, text } = await scrape();
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(text, 'sextant_operations_total{door="mcp",tool="query",tenant="acme",outcome="ok"}')).toBe(1);
    expect(sample(text, 'sextant_operations_total{door="mcp",tool="query",tenant="acme",outcome="refused"}')).toBe(1);
    expect(sample(text, 'sextant_operation_errors_total{tool="query",code="SX400"}')).toBe(1);
    expect(sample(text, 'sextant_operations_total{door="graphql",tool="graphql:whoami",tenant="globex",outcome="ok"}')).toBe(2);
    expect(sample(text, 'sextant_operations_total{door="http",tool="dbt_upload",tenant="globex",outcome="refused"}')).toBe(1);
    expect(sample(text, 'sextant_operation_errors_total{tool="dbt_upload",code="SX403"}')).toBe(1);
    expect(sample(text, 'sextant_operation_duration_seconds_count{door="mcp",tool="query"}')).toBe(2);
    expect(sample(text, 'sextant_operation_duration_seconds_bucket{le="+Inf",door="mcp",tool="query"}')).toBe(2);
    for (const state of ["in_use", "idle", "waiting"]) expect(sample(text, `sextant_pool_connections{pool="primary",state="${state}"}`)).toBeGreaterThanOrEqual(0);
    expect(sample(text, "sextant_audit_queue_depth")).toBeGreaterThanOrEqual(0);
    expect(sample(text, "sextant_database_up")).toBe(1);
    expect(text).toContain("sextant_process_resident_memory_bytes");
    expect(text).toMatch(/^sextant_http_requests_in_flight 1$/m); // this scrape

    // The upload's audit row came from the same step as every other door's.
    const audited = await eventually(async () => (await db.admin.query(
      "select tool, outcome, error_code from sextant.audit_events where tool = 'dbt_upload' and tenant_slug = 'globex'")).rows[0]);
    expect(audited).toEqual({ tool: "dbt_upload", outcome: "refused", error_code: "SX403" });
    // Audit writes show up as stored.
    expect(sample((await scrape()).text, 'sextant_audit_events_total{result="stored"}')).toBeGreaterThan(0);
  });

  test("materialization runs and worker jobs by state come from PostgreSQL, across tenants", async () => {
    const { rows: [pipeline] } = await db.admin.query(`insert into sextant.pipelines (tenant_slug, name, target_schema, source, entities)
      select 'globex', 'metrics_test', schema_name, '{"kind": "csv"}', '[{"name": "x"}]' from sextant.tenant_schemas where tenant_slug = 'globex' limit 1
      returning id`);
    await db.admin.query(`insert into sextant.materialization_runs (tenant_slug, pipeline_id, status, finished_at)
      values ('globex', $1, 'failed', now()), ('globex', $1, 'failed', now()), ('globex', $1, 'cancelled', now())`, [pipeline.id]);
    const { rows } = await db.admin.query("select status, count(*)::int as n from sextant.materialization_runs group by status");
    expect(rows.find((r) => r.status === "failed")?.n).toBeGreaterThanOrEqual(2);
    const { rows: jobs } = await db.admin.query("select count(*)::int as n from graphile_worker._private_jobs");
    await new Promise((r) => setTimeout(r, 1100)); // the counts are cached for a second
    const { text } = await scrape();
    for (const r of rows) expect(sample(text, `sextant_materialization_runs{status="${r.status}"}`)).toBe(r.n);
    const jobLines = text.split("\n").filter((l) => l.startsWith("sextant_worker_jobs{"));
    expect(jobLines.reduce((n, l) => n + Number(l.split(" ")[1]), 0)).toBe(jobs[0].n);
  });

  test("a caller's text never becomes a label: a JWT subject built to forge samples is not in the output", async () => {
    const forged = 'x"} 1\nsextant_forged_total{a="b"} 99\n#';
    const jwt = await new SignJWT({ tenant: "acme", access_level: "viewer" }).setProtectedHeader({ alg: "HS256" }).setSubject(forged)
      .setIssuer(JWT_ISSUER).setAudience(JWT_AUDIENCE).setExpirationTime("5m").sign(new TextEncoder().encode(JWT_SECRET));
    expect((await gql(server.url, jwt, "{ whoami { tenant } }")).status).toBe(200);
    const { text } = await scrape();
    expect(text).not.toContain("sextant_forged_total");
    expect(text).not.toContain("metrics-analyst"); // principals are not labels either
  });

  test("without a token, only loopback clients may read it", async () => {
    const outside = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal);
    if (!outside) return void console.warn("no non-loopback IPv4 address here: the outside-client check is skipped");
    const { status, text } = await scrape({}, `http://${outside.address}:${server.port}`);
    expect(status).toBe(403);
    expect(text).not.toContain("sextant_operations_total");
  });
});

describe("GET /metrics with SEXTANT_METRICS_TOKEN", () => {
  test("answers only the bearer of the token, from anywhere", async () => {
    const guarded = await startTestServer(db, { SEXTANT_METRICS_TOKEN: "s3cret-metrics-token-0123456789" });
    try {
      expect((await scrape({}, guarded.url)).status).toBe(401);
      expect((await scrape({ authorization: "Bearer wrong" }, guarded.url)).status).toBe(401);
      expect((await scrape({ authorization: `Bearer ${analyst}` }, guarded.url)).status).toBe(401); // a tenant's token is not it
      const ok = await scrape({ authorization: "Bearer s3cret-metrics-token-0123456789" }, guarded.url);
      expect(ok.status).toBe(200);
      expect(ok.text).toContain("# TYPE sextant_operations_total counter");
    } finally {
      await guarded.close();
    }
  });
});
