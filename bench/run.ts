/**
 * `npm run bench`: Sextant's tool latency beside two floors measured in the same run, since
 * these machines are shared and noisy (ratios, not absolute times, are the result):
 *   floor (a) the same SQL through a raw node-postgres pool (connections already in the role);
 *   floor (b) a minimal MCP server: same SDK, same pool kind, same SQL, no auth/guard/audit/limits.
 * Calls to Sextant and to floor (b) are interleaved so both see the same machine load.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import pg from "pg";
import { openEmbedded } from "../src/db/embedded.ts";
import { authenticatorUrl, migrateDatabase } from "../src/db/migrate.ts";
import { projectRoot } from "../src/db/paths.ts";
import { createEmbedder, embedDbtProject } from "../src/dbt/embeddings.ts";
import { loadDbtArtifacts } from "../src/dbt/loadArtifacts.ts";
import { loadDemo } from "../src/demo/loadDemo.ts";
import { benchMaterialize } from "./materialize.ts";
import { writeSyntheticManifest } from "./syntheticManifest.ts";
import { allTools } from "../src/mcp/server.ts";
import { startEmbeddingServer } from "../test/helpers/embeddingServer.ts";
import { freePort } from "../test/helpers/ports.ts";

const N = Number(process.env.BENCH_N ?? 150);
const WARMUP = 20;
const CONCURRENT_SECONDS = Number(process.env.BENCH_CONCURRENT_S ?? 4);
const node = process.execPath;
const tsx = ["--import", "tsx"];
const log = (line: string) => process.stderr.write(`${line}\n`);

const cases: [string, Record<string, unknown>][] = [
  ["whoami", {}],
  ["list_schemas", {}],
  ["list_tables", { schema: "bench_s1" }],
  ["describe_table", { table: "t50", schema: "bench_s1" }],
  ["get_metadata", { schema: "bench_s1" }],
  ["list_functions", {}],
  ["sample_table", { table: "t1", schema: "bench_s1", n: 20 }],
  ["query", { sql: "select id, c1, c2, c3 from bench_s1.t1 where id <= 20 order by id" }],
  ["explain_query", { sql: "select * from bench_s1.t1 where c1 = 'x'" }],
];

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p95: at(0.95) };
}
const f = (n: number) => n.toFixed(2);

async function waitForLine(child: ChildProcess, text: string): Promise<void> {
  let out = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}": ${out}`)), 120_000);
    child.stdout!.on("data", (d) => {
      out += String(d);
      if (out.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

/**
 * The median time Sextant spent inside a tool's calls (rate limit, SQL round trip, shaping), as
 * its audit log records it: answers stream over HTTP, so a Server-Timing header would only
 * measure until the stream opened.
 */
async function auditMedian(adminUrl: string, tool: string, principal: string, since: Date): Promise<number> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    for (let i = 0; i < 50; i++) {
      const { rows } = await c.query(
        `select count(*)::int as n, percentile_cont(0.5) within group (order by duration_ms) as median
           from sextant.audit_events where tool = $1 and principal like $2 and at >= $3`, [tool, principal, since]);
      if (rows[0].n >= N) return Number(rows[0].median);
      await new Promise((r) => setTimeout(r, 100)); // the audit log writes in batches
    }
    return NaN;
  } finally {
    await c.end();
  }
}

/** An HTTP MCP client. */
async function httpClient(url: string, token?: string) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : {},
  });
  const client = new Client({ name: "bench", version: "1.0.0" });
  await client.connect(transport);
  return { client };
}

async function stdioClient(command: string, args: string[], env: Record<string, string>) {
  const client = new Client({ name: "bench", version: "1.0.0" });
  await client.connect(new StdioClientTransport({ command, args, env: { PATH: process.env.PATH ?? "", ...env }, stderr: "ignore" }));
  return client;
}

async function timeCall(client: Client, name: string, args: Record<string, unknown>): Promise<number> {
  const t = performance.now();
  const r = await client.callTool({ name, arguments: args });
  const ms = performance.now() - t;
  if (r.isError) throw new Error(`${name} failed: ${JSON.stringify(r.content).slice(0, 300)}`);
  return ms;
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-bench-"));
  fs.chmodSync(dataDir, 0o755);
  const children: ChildProcess[] = [];
  const db = await openEmbedded({ dataDir, port: await freePort(), dbName: "sextant_bench", log: process.env.BENCH_PG_LOG ? log : undefined });
  try {
    log("setting up: migrations, demo data, 2,000-table catalog ...");
    await migrateDatabase(db.adminUrl);
    const admin = new pg.Client({ connectionString: db.adminUrl });
    admin.on("error", () => {});
    await admin.connect();
    await loadDemo(admin);
    let t0 = performance.now();
    await admin.query(`set role sextant_owner; ${fs.readFileSync(path.join(projectRoot, "bench/catalog.sql"), "utf8")}; reset role;`);
    const schemas = Array.from({ length: 20 }, (_, i) => `bench_s${i + 1}`);
    await admin.query("select sextant_private.create_tenant('bench', 'Benchmark', $1)", [schemas]);
    await admin.query(`update sextant.tenants set max_rows = 1000, rate_per_minute = 1000000, rate_per_hour = 10000000,
                       tenant_rate_per_day = 100000000 where slug = 'bench'`);
    const { rows } = await admin.query("select sextant_private.create_api_token('bench', 'bench-agent', 'analyst', null) as token");
    const token = rows[0].token as string;
    await admin.end();
    log(`catalog ready in ${Math.round(performance.now() - t0)} ms`);

    const authUrl = await authenticatorUrl(db.adminUrl);
    const sxPort = await freePort();
    const floorPort = await freePort();
    const sextant = spawn(node, [path.join(projectRoot, "bin/sextant.mjs"), "serve"], {
      env: { ...process.env, DATABASE_URL: db.adminUrl, PORT: String(sxPort), SEXTANT_DEMO: "0", SEXTANT_WORKER: "0", LOG_LEVEL: "warn", SEXTANT_DATA_DIR: dataDir },
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(sextant);
    const floorEnv = { FLOOR_DB_URL: authUrl, FLOOR_ROLE: "sextant_t_bench__analyst" };
    const floor = spawn(node, [...tsx, path.join(projectRoot, "bench/floorServer.ts"), "--http", String(floorPort)], {
      env: { ...process.env, ...floorEnv },
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(floor);
    await Promise.all([waitForLine(sextant, "Sextant is ready"), waitForLine(floor, "floor ready")]);

    // Floor (a): raw pooled SQL, connections already in the tenant's role.
    const raw = new pg.Pool({ connectionString: authUrl, max: 4, options: "-c role=sextant_t_bench__analyst" });

    const results: string[] = [];
    const table = (title: string) => {
      results.push(`\n### ${title}\n`);
      results.push("| tool | raw SQL (a) median | floor (b) median / p95 | Sextant median / p95 | Sextant tool time (audit) median | Sextant ÷ (b) |");
      results.push("| --- | --- | --- | --- | --- | --- |");
    };

    for (const transport of ["http", "stdio"] as const) {
      let sx: Client, fl: Client;
      if (transport === "http") {
        sx = (await httpClient(`http://127.0.0.1:${sxPort}/mcp`, token)).client;
        fl = (await httpClient(`http://127.0.0.1:${floorPort}/mcp`)).client;
      } else {
        sx = await stdioClient(node, [path.join(projectRoot, "bin/sextant.mjs"), "mcp", "--tenant", "bench", "--role", "analyst"], {
          DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn",
        });
        fl = await stdioClient(node, [...tsx, path.join(projectRoot, "bench/floorServer.ts"), "--stdio"], floorEnv);
      }
      table(`MCP over ${transport === "http" ? "Streamable HTTP" : "stdio"} (${N} calls each, interleaved)`);
      for (const [name, args] of cases) {
        const spec = allTools.find((s) => s.name === name)!;
        const rawMs: number[] = [];
        const sxMs: number[] = [];
        const flMs: number[] = [];
        for (let i = 0; i < WARMUP; i++) {
          await timeCall(sx, name, args);
          await timeCall(fl, name, args);
        }
        const since = new Date();
        for (let i = 0; i < N; i++) {
          const t = performance.now();
          await raw.query(spec.sql, spec.args(args as never));
          rawMs.push(performance.now() - t);
          if (i % 2) {
            sxMs.push(await timeCall(sx, name, args));
            flMs.push(await timeCall(fl, name, args));
          } else {
            flMs.push(await timeCall(fl, name, args));
            sxMs.push(await timeCall(sx, name, args));
          }
        }
        const a = stats(rawMs), b = stats(flMs), s = stats(sxMs);
        const server = f(await auditMedian(db.adminUrl, name, transport === "http" ? "bench-agent" : "local:%", since));
        results.push(`| ${name} | ${f(a.median)} | ${f(b.median)} / ${f(b.p95)} | ${f(s.median)} / ${f(s.p95)} | ${server} | **${(s.median / b.median).toFixed(2)}×** |`);
        log(results.at(-1)!);
      }
      await sx.close();
      await fl.close();
    }

    // 16 concurrent HTTP clients, each calling as fast as it can for a few seconds.
    results.push(`\n### 16 concurrent HTTP clients, ${CONCURRENT_SECONDS} s each side (list_tables on a 100-table schema, then query)\n`);
    results.push("| tool | floor (b) calls/s | Sextant calls/s | Sextant ÷ (b) | errors (b / Sextant) |");
    results.push("| --- | --- | --- | --- | --- |");
    for (const [name, args] of [cases[2]!, cases[7]!]) {
      const run = async (url: string, tok?: string) => {
        const clients = await Promise.all(Array.from({ length: 16 }, () => httpClient(url, tok)));
        let calls = 0, errors = 0;
        const end = performance.now() + CONCURRENT_SECONDS * 1000;
        await Promise.all(clients.map(async ({ client }) => {
          while (performance.now() < end) {
            try { await timeCall(client, name, args); calls++; } catch { errors++; }
          }
        }));
        await Promise.all(clients.map(({ client }) => client.close()));
        return { rate: calls / CONCURRENT_SECONDS, errors };
      };
      const b = await run(`http://127.0.0.1:${floorPort}/mcp`);
      const s = await run(`http://127.0.0.1:${sxPort}/mcp`, token);
      results.push(`| ${name} | ${b.rate.toFixed(0)} | ${s.rate.toFixed(0)} | **${(s.rate / b.rate).toFixed(2)}×** | ${b.errors} / ${s.errors} |`);
      log(results.at(-1)!);
    }

    // Sizes: get_metadata on 100 tables, text vs pretty JSON for 1,000 wide rows, tools/list.
    const { client } = await httpClient(`http://127.0.0.1:${sxPort}/mcp`, token);
    const metaMs: number[] = [];
    for (let i = 0; i < 20; i++) metaMs.push(await timeCall(client, "get_metadata", { schema: "bench_s2" }));
    const wide = await client.callTool({ name: "query", arguments: { sql: "select * from bench_s1.t1 order by id", max_rows: 1000 } });
    const wideText = (wide.content as { text: string }[])[0]!.text;
    const wideRows = (wide.structuredContent as { rows: unknown[]; columns: unknown[] });
    const pretty = JSON.stringify(wideRows.rows, null, 2);
    const list = await client.listTools();
    const listBytes = JSON.stringify(list.tools).length;
    await client.close();
    results.push("\n### Sizes and targets\n");
    results.push("| measure | value | target |");
    results.push("| --- | --- | --- |");
    results.push(`| get_metadata, 100-table schema (median of 20, HTTP) | ${f(stats(metaMs).median)} ms | ≤ 150 ms |`);
    results.push(`| text for ${wideRows.rows.length} rows × ${wideRows.columns.length} columns vs pretty JSON | ${wideText.length} B / ${pretty.length} B = **${(wideText.length / pretty.length).toFixed(2)}** | ≤ 0.40 |`);
    results.push(`| tools/list (${list.tools.length} tools) | ${listBytes} B ≈ **${Math.round(listBytes / 4)} tokens** | ≤ 2,500 tokens |`);

    // dbt: load throughput (largest real fixture, and a synthetic 10,000-node manifest), then
    // search and details latency on the real one.
    results.push("\n### dbt knowledge base\n");
    results.push("| measure | value | target |");
    results.push("| --- | --- | --- |");
    const fixtures = path.resolve(projectRoot, "test/fixtures/dbt");
    const loader = new pg.Client({ connectionString: db.adminUrl });
    await loader.connect();
    // The synthetic project goes to another tenant: search below runs on Tuva, the largest real one.
    for (const [label, dir, tenant] of [
      ["Tuva manifest v8 + catalog + run_results (4 MB + 2 files)", path.join(fixtures, "tuva"), "bench"],
      ["synthetic manifest, 10,000 models", writeSyntheticManifest(path.join(dataDir, "synthetic"), 10_000), "demo"],
    ] as const) {
      if (!fs.existsSync(dir)) continue;
      const r = await loadDbtArtifacts(loader, { tenant, dir });
      const nodes = r.counts.node ?? 0;
      results.push(`| load ${label} | ${nodes} nodes in ${r.ms} ms = **${Math.round((nodes / r.ms) * 1000)} nodes/s** | |`);
      log(results.at(-1)!);
    }
    await loader.end();
    {
      const { client: c } = await httpClient(`http://127.0.0.1:${sxPort}/mcp`, token);
      const queries = ["hospital readmission rate", "readmision sumary", "chronic conditions per patient", "pmpm cost by payer",
        "emergency department visits", "medical claim lines", "risk adjustment hcc", "encounter type", "pharmacy claims", "member months"];
      const searchMs: number[] = [];
      const detailMs: number[] = [];
      for (let i = 0; i < 5; i++) await timeCall(c, "search_dbt_models", { query: queries[i]! });
      for (let i = 0; i < 60; i++) searchMs.push(await timeCall(c, "search_dbt_models", { query: queries[i % queries.length]! }));
      for (let i = 0; i < 40; i++) detailMs.push(await timeCall(c, "get_model_details", { model: "core__condition", lineage_depth: 3 }));
      await c.close();
      // The same searches straight in SQL (node-postgres, same role), and on the 10,000-model
      // synthetic project (tenant demo), in the same run: how much is the tool around the SQL,
      // and how search grows with the project.
      const sqlMs = async (pool: pg.Pool, n: number) => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) {
          const started = performance.now();
          await pool.query("select * from sextant.search_dbt_models($1, 10)", [queries[i % queries.length]!]);
          out.push(performance.now() - started);
        }
        return out;
      };
      await sqlMs(raw, 5);
      const rawSearchMs = await sqlMs(raw, 60);
      const demoPool = new pg.Pool({ connectionString: authUrl, max: 1, options: "-c role=sextant_t_demo" });
      await sqlMs(demoPool, 5);
      const bigSearchMs = await sqlMs(demoPool, 60);
      await demoPool.end();
      results.push(`| search_dbt_models on Tuva, 441 nodes (MCP HTTP, median of 60) | ${f(stats(searchMs).median)} ms (p95 ${f(stats(searchMs).p95)}) | < 15 ms |`);
      results.push(`| the same searches in SQL (node-postgres), same run | ${f(stats(rawSearchMs).median)} ms (p95 ${f(stats(rawSearchMs).p95)}); MCP ÷ SQL = **${(stats(searchMs).median / stats(rawSearchMs).median).toFixed(2)}×** | |`);
      results.push(`| the same searches in SQL on the synthetic 10,000-model project | ${f(stats(bigSearchMs).median)} ms (p95 ${f(stats(bigSearchMs).p95)}) | |`);
      results.push(`| get_model_details, lineage depth 3 (MCP HTTP, median of 40) | ${f(stats(detailMs).median)} ms (p95 ${f(stats(detailMs).p95)}) | < 20 ms |`);
      // With vectors (the optional embeddings endpoint): Tuva's nodes embedded at 1,536
      // dimensions by the tests' stand-in endpoint, the same searches in SQL with the question's
      // vector, in the same run as the words-only figure above.
      const endpoint = await startEmbeddingServer({ dims: 1536 });
      const embedder = createEmbedder({ url: endpoint.url, model: "stand-in" })!;
      const vectors = await embedder.embed(queries);
      const withVectors = async (tenant: string, project: string, pool: pg.Pool) => {
        const embedClient = new pg.Client({ connectionString: db.adminUrl });
        await embedClient.connect();
        const { rows: [p] } = await embedClient.query("select id from sextant.dbt_projects where tenant_slug = $1 and project_name = $2", [tenant, project]);
        const started = performance.now();
        const nodes = await embedDbtProject(embedClient, embedder, p.id);
        const embedMs = performance.now() - started;
        await embedClient.end();
        const ms: number[] = [];
        for (let i = 0; i < 65; i++) {
          const t = performance.now();
          await pool.query("select * from sextant.search_dbt_models($1, 10, $2, 'stand-in')", [queries[i % queries.length]!, vectors[i % queries.length]!]);
          if (i >= 5) ms.push(performance.now() - t);
        }
        return { nodes, embedMs, ms };
      };
      const tuvaV = await withVectors("bench", "the_tuva_project", raw);
      const bigPool = new pg.Pool({ connectionString: authUrl, max: 1, options: "-c role=sextant_t_demo" });
      const bigV = await withVectors("demo", (await bigPool.query("select project_name from sextant.dbt_projects limit 1")).rows[0].project_name, bigPool);
      await bigPool.end();
      await endpoint.close();
      results.push(`| the same searches in SQL with the question's vector (${tuvaV.nodes} nodes × 1,536 dimensions, stand-in endpoint) | ${f(stats(tuvaV.ms).median)} ms (p95 ${f(stats(tuvaV.ms).p95)}); ÷ words only = **${(stats(tuvaV.ms).median / stats(rawSearchMs).median).toFixed(2)}×**; embedding and storing them took ${Math.round(tuvaV.embedMs)} ms | |`);
      results.push(`| the same with vectors on the synthetic project (${bigV.nodes} nodes × 1,536 dimensions) | ${f(stats(bigV.ms).median)} ms (p95 ${f(stats(bigV.ms).p95)}); ÷ words only = **${(stats(bigV.ms).median / stats(bigSearchMs).median).toFixed(2)}×**; embedding and storing them took ${Math.round(bigV.embedMs)} ms | |`);
      for (const line of results.slice(-6)) log(line);
    }
    await raw.end();
    results.push(...(await benchMaterialize(db.adminUrl, dataDir)));

    const header = `# Sextant benchmark (${new Date().toISOString()}, ${os.cpus().length} cores, Node ${process.versions.node})`;
    process.stdout.write([header, ...results, ""].join("\n"));
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    await db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
