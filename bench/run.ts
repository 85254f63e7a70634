/**
 * `npm run bench`: Sextant beside its peers on the user's own database, in ONE interleaved run.
 * It starts its own PostgreSQL (Debian's 15 when installed, else an embedded 18), loads Pagila
 * and a generated 2,000-table catalog, installs Sextant with DATABASE_URL as a user would, and
 * compares, through the MCP SDK's client: a floor server (same SDK, plain pg_catalog SQL, no
 * auth), @bytebase/dbhub (stdio, and HTTP with its bearer token), @modelcontextprotocol/
 * server-postgres (stdio) and Sextant (stdio and HTTP). The peers are the bench's own pinned
 * dependencies (bench/peers/package.json), installed into bench/peers/node_modules on the first run.
 *   npm run bench                 3 runs x 200 calls per op and target; writes bench/RESULTS.md,
 *                                 and Sextant's /metrics at the end of the run to bench/METRICS.txt
 *   npm run bench -- --quick      1 run x 10 calls, a 2-schema catalog; prints the table only
 *   options: --runs N --calls N --schemas N --seconds N --out FILE (metrics: FILE without .md + .metrics.txt)
 * Ratios, not absolute times, are the result: the machines are shared and noisy.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { startCluster, withDatabase } from "./cluster.ts";
import { loadFixtures } from "./fixtures.ts";
import { installSextant, sextant } from "./install.ts";
import { concurrentRun, fetchMetrics, interleavedRun, median, metricsPath, rssMb, sqlCosts, startServe, stopChild } from "./measure.ts";
import { report, type Results } from "./report.ts";
import { makeTargets, OPS, peersInstalled, type Target } from "./targets.ts";

const here = path.dirname(new URL(import.meta.url).pathname);
const log = (line: string) => process.stderr.write(`${line}\n`);

const { values: o } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    calls: { type: "string" },
    schemas: { type: "string" },
    seconds: { type: "string" },
    out: { type: "string" },
    "no-sources": { type: "boolean", default: false },
  },
});
const quick = o.quick!;
const runs = Number(o.runs ?? (quick ? 1 : 3));
const calls = Number(o.calls ?? (quick ? 10 : 200));
const schemas = Number(o.schemas ?? (quick ? 2 : 20));
const seconds = Number(o.seconds ?? (quick ? 0.5 : 4));
const out = o.out ?? (quick ? undefined : path.join(here, "RESULTS.md"));

async function main() {
  if (!peersInstalled()) {
    log("installing the peers into bench/peers/node_modules (bench/peers/package.json, pinned) ...");
    const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: path.join(here, "peers"), stdio: "inherit" });
    if (r.status !== 0) throw new Error("npm install in bench/ failed");
  }
  const cluster = await startCluster();
  log(`${cluster.server} at ${cluster.url}`);
  // Ctrl-C: the PostgreSQL it started goes too.
  process.once("SIGINT", () => void cluster.stop().finally(() => process.exit(130)));
  const stops: (() => Promise<void>)[] = [];
  try {
    const url = withDatabase(cluster.url, "pagila");
    await loadFixtures(cluster.url, url, schemas, log);
    const catalogSchemas = Array.from({ length: schemas }, (_, i) => `catalog_${String(i + 1).padStart(2, "0")}`);
    const installed = await installSextant(url, catalogSchemas, log);
    const fixture = { url, pagila: installed.pagilaSchema, token: installed.token };

    // Ready time on the migrated database: three starts; the last server stays for the bench.
    // (`sextant --help` first: a start after a source changed rebuilds the CLI bundle.)
    await sextant(url, ["--help"]);
    const readyMs: number[] = [];
    const readyCpuMs: number[] = [];
    let serve = await startServe(url);
    readyMs.push(serve.readyMs);
    readyCpuMs.push(serve.cpuMs);
    for (let i = 1; i < 3; i++) {
      await stopChild(serve.child);
      serve = await startServe(url);
      readyMs.push(serve.readyMs);
      readyCpuMs.push(serve.cpuMs);
    }
    log(`sextant serve ready in ${readyMs.map((m) => Math.round(m)).join(", ")} ms (CPU ${readyCpuMs.join(", ")} ms)`);
    const served = serve;
    stops.push(() => stopChild(served.child));

    const targets = makeTargets(fixture, { port: serve.port, child: serve.child });
    for (const t of targets) stops.push(() => t.stop());
    const clients = new Map<Target, Client>();
    for (const t of targets) {
      clients.set(t, await t.connect());
      log(`connected: ${t.name}`);
    }

    const results: Results = {
      when: new Date().toISOString(), server: cluster.server, quick, runs, calls, schemas, seconds,
      machine: `${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}, Node ${process.versions.node}`,
      targets, latency: [], concurrency: [], sql: [], readyMs, readyCpuMs, texts: new Map(), rss: {},
    };
    for (let r = 0; r < runs; r++) {
      log(`run ${r + 1}/${runs}: ${calls} calls per op and target ...`);
      const { medians, texts } = await interleavedRun(targets, clients, OPS, calls, quick ? 2 : 10);
      results.latency.push(medians);
      if (r === 0) results.texts = texts;
      for (const op of OPS) log(`  ${op}: ${targets.map((t) => `${t.name} ${medians.get(op)!.get(t)!.toFixed(2)}`).join(" · ")}`);
      const conc = await concurrentRun(targets.filter((t) => t.transport === "http"), 16, seconds);
      results.concurrency.push(conc);
      log(`  16 clients: ${[...conc].map(([t, c]) => `${t.name} ${c.rate.toFixed(0)}/s (${c.errors} errors, CPU ${c.cpuMsPerCall.toFixed(2)} ms/call)`).join(" · ")}`);
      const sql = await sqlCosts(fixture, installed.tenantRole, calls);
      results.sql.push(sql);
      log(`  SQL: ${Object.entries(sql).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(" · ")}`);
    }
    for (const t of targets) if (t.family === "sextant") results.rss[t.name] = rssMb(t.pid());
    // `sextant serve`'s own account of the run (tool calls, latency histograms, pool, audit queue).
    const metrics = await fetchMetrics(serve.port).catch((e: Error) => `# GET /metrics failed: ${e.message}\n`);
    for (const c of clients.values()) await c.close().catch(() => {});

    const md = report(results, out ? path.basename(metricsPath(out)) : undefined);
    if (out) {
      fs.writeFileSync(out, md);
      fs.writeFileSync(metricsPath(out), `# sextant serve's GET /metrics at the end of the bench of ${results.when} (${path.basename(out)})\n${metrics}`);
    }
    process.stdout.write(md);
    log(out ? `written to ${path.relative(process.cwd(), out)}` : "");
    log(`ready median ${median(readyMs).toFixed(0)} ms`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await cluster.stop();
  }
}

/**
 * Issue 18's comparison, after the peers' cluster is gone (so it runs on a machine as quiet as
 * the peers had): bench/sources.ts in its own process, its report appended to the results.
 */
function sourcesSection(): void {
  if (o["no-sources"]) return;
  log("sources bench (bench/sources.ts; --no-sources skips it) ...");
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(here, "sources.ts"), "--runs", String(quick ? 30 : Math.max(100, calls))],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 20 * 60_000 });
  if (r.status !== 0) throw new Error(`bench/sources.ts failed (exit ${r.status ?? r.signal})`);
  const section = `\n## Sources (issue 18: \`npm run bench:sources\`)\n\n\`\`\`text\n${r.stdout.trim()}\n\`\`\`\n`;
  if (out) fs.appendFileSync(out, section);
  process.stdout.write(section);
}

main().then(sourcesSection).then(() => process.exit(0), (error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
