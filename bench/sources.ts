/**
 * Sources (issue 18): the cost of reading another PostgreSQL through a source. Two embedded
 * PostgreSQL servers on this machine (loopback): the remote holds analytics.events (200,000
 * rows); Sextant, installed in the local one, imports it as source `wh` of tenant `bench`.
 * Two comparisons, each alternating on warm connections so both sides see the same load:
 *  - "plain": the SQL sent by a plain pg client as the tenant's reader role through the source's
 *    view, against the same SQL sent by a plain pg client straight to the remote (its own login);
 *  - "sextant.query": the same SQL through Sextant's query runner (what MCP `query` and GraphQL
 *    call), on the source's table against a local copy of the same table in the same tenant
 *    (what Sextant installed in the remote database would do);
 *  - "MCP query": what an agent sees, the `query` tool over HTTP (SDK client, a running
 *    `sextant serve`, an analyst token), on the source's table against the local copy.
 * Before timing, one call per case runs with log_statement=all on the remote and prints every
 * statement postgres_fdw sent there (its round trips). Prints medians, p95 and the ratios
 * (target <= 1.5x for the point lookup and the aggregate). Usage: npm run bench:sources [-- --runs 300]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { openEmbedded } from "../src/db/embedded.ts";
import { installDatabase } from "../src/install.ts";
import { addSource } from "../src/sources/index.ts";
import { freePort } from "../test/helpers/ports.ts";
import { connectHttp } from "../test/helpers/mcpClient.ts";
import { sextant } from "./install.ts";
import { startServe, stopChild } from "./measure.ts";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 300;
const PASSWORD = "bench-remote-password-7c1d";
const ROWS = 200_000;

interface Case {
  name: string;
  sql: (schema: string) => string;
  params: (i: number) => unknown[];
  target?: number;
}

const CASES: Case[] = [
  { name: "point lookup (primary key)", sql: (s) => `select * from ${s}.events where id = $1`, params: (i) => [1 + ((i * 7919) % ROWS)], target: 1.5 },
  { name: "aggregate (group by, 200k rows)", sql: (s) => `select customer % 10 as bucket, count(*), sum(amount) from ${s}.events group by 1 order by 1`, params: () => [], target: 1.5 },
  { name: "1,000-row read", sql: (s) => `select * from ${s}.events where id > $1 order by id limit 1000`, params: (i) => [(i * 1009) % (ROWS - 1000)] },
];

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

type Run = (c: Case, i: number) => Promise<number>;

/** Alternates two ways of running each case; medians, p95 and ratio of `a` over `b`. */
async function compare(title: string, aName: string, bName: string, a: Run, b: Run) {
  const rows: string[] = [];
  for (const c of CASES) {
    const ta: number[] = [];
    const tb: number[] = [];
    for (let i = 0; i < RUNS + 20; i++) {
      const order = i % 2 === 0 ? ([[a, ta], [b, tb]] as const) : ([[b, tb], [a, ta]] as const);
      for (const [run, times] of order) {
        const t0 = process.hrtime.bigint();
        const n = await run(c, i);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (n === 0) throw new Error(`${c.name}: no rows (${title})`);
        if (i >= 20) times.push(ms);
      }
    }
    const ma = quantile(ta, 0.5);
    const mb = quantile(tb, 0.5);
    const ratio = ma / mb;
    const verdict = c.target === undefined ? "-" : `<= ${c.target}x ${ratio <= c.target ? "met" : "NOT met"}`;
    rows.push(
      `${c.name.padEnd(33)} ${ma.toFixed(3).padStart(8)} ms  ${mb.toFixed(3).padStart(8)} ms  ${ratio.toFixed(2).padStart(6)}x   ${verdict}` +
        `   (p95 ${quantile(ta, 0.95).toFixed(3)} / ${quantile(tb, 0.95).toFixed(3)} ms)`,
    );
  }
  console.log(`\n${title}`);
  console.log(`case                              ${aName.padEnd(16)}  ${bName.padEnd(11)}  ratio   target`);
  for (const r of rows) console.log(r);
}

async function main() {
  const dirs = [0, 1].map(() => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-bench-src-"));
    fs.chmodSync(d, 0o755);
    return d;
  });
  // The remote's log, kept only while tracing (log_statement=all for one call per case).
  let remoteLog: string[] | undefined;
  const remote = await openEmbedded({ dataDir: dirs[0]!, port: await freePort(), dbName: "warehouse", log: (l) => remoteLog?.push(l) });
  const local = await openEmbedded({ dataDir: dirs[1]!, port: await freePort(), dbName: "sextant_bench" });
  const clients: pg.Client[] = [];
  const connect = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    clients.push(c);
    return c;
  };
  const table = `create table %s.events (id int primary key, customer int not null, amount numeric not null, note text not null);
      insert into %s.events select i, i % 5000, (i % 997) * 1.5, 'event ' || i from generate_series(1, ${ROWS}) as i;`;
  try {
    const r = await connect(remote.adminUrl);
    await r.query(`
      create role sx_reader login password '${PASSWORD}';
      create schema analytics;
      ${table.replaceAll("%s", "analytics")}
      grant usage on schema analytics to sx_reader;
      grant select on all tables in schema analytics to sx_reader;`);
    await r.query("vacuum analyze analytics.events");
    const remoteUrl = new URL(remote.adminUrl);
    remoteUrl.username = "sx_reader";
    remoteUrl.password = PASSWORD;

    await installDatabase(local.adminUrl);
    const admin = await connect(local.adminUrl);
    // The tenant's own local copy of the table: Sextant on the same data without a source.
    await admin.query(`create schema bench_local; ${table.replaceAll("%s", "bench_local")}`);
    await admin.query("vacuum analyze bench_local.events");
    await admin.query("select sextant_private.create_tenant('bench', 'Bench', array['bench_local'])");
    const port = Number(remoteUrl.port);
    await addSource(admin, [`127.0.0.1:${port}`], { tenant: "bench", name: "wh", url: remoteUrl.toString().replace("localhost", "127.0.0.1"), schemas: ["analytics"] });

    // The tenant's session as the server runs it: the reader role, read-only, its statement timeout.
    const viaSource = await connect(local.adminUrl);
    await viaSource.query("set role sextant_t_bench; set default_transaction_read_only = on; set statement_timeout = 15000");
    const direct = await connect(remoteUrl.toString());

    const plan = (await viaSource.query(`explain (verbose, costs off) ${CASES[1]!.sql("wh_analytics")}`)).rows.map((x) => x["QUERY PLAN"]).join("\n");
    const pushed = /Remote SQL: .*GROUP BY/.test(plan);

    console.log(`sources bench: ${ROWS} remote rows, ${RUNS} runs per case (after 20 warm-up), PostgreSQL ${(await r.query("show server_version")).rows[0].server_version} both sides, loopback, load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
    console.log(`aggregate pushed down to the remote: ${pushed ? "yes" : "NO"}`);

    // What one call costs the remote: every statement postgres_fdw sends (application_name sextant).
    await r.query("alter system set log_statement = 'all'");
    await r.query("alter system set log_line_prefix = '[%a] '");
    await r.query("select pg_reload_conf()");
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
    await sleep(300);
    await viaSource.query("select 1"); // lets the backends' SIGHUP land
    await sleep(200);
    console.log("\nremote statements per call through the source (log_statement=all on the remote; connection already open):");
    const inline = (c: Case, schema: string, i: number) => c.params(i).reduce<string>((sql, p, k) => sql.replace(`$${k + 1}`, String(Number(p))), c.sql(schema));
    const traced: [string, () => Promise<unknown>][] = CASES.map((c) => [c.name, () => viaSource.query(c.sql("wh_analytics"), c.params(1))]);
    traced.push([`${CASES[0]!.name} via sextant.query`, () => viaSource.query("select sextant.query($1)", [inline(CASES[0]!, "wh_analytics", 1)])]);
    for (const [name, run] of traced) {
      // The log arrives late on a busy machine: wait for the warm-up call's lines before collecting.
      await run();
      await sleep(500);
      remoteLog = [];
      await run();
      await sleep(500);
      const sent = remoteLog
        .flatMap((chunk) => chunk.split(/\n(?=\[)/))
        .filter((l) => /^\[sextant\] LOG:  (statement|execute [^:]*): /.test(l))
        .map((l) => l.replace(/^.*?(statement|execute [^:]*): /, "").replace(/\s+/g, " ").slice(0, 40));
      console.log(`  ${name}: ${sent.length} round trips: ${sent.join(" | ")}`);
    }
    remoteLog = undefined;
    await r.query("alter system reset log_statement");
    await r.query("alter system reset log_line_prefix");
    await r.query("select pg_reload_conf()");

    const trips: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = process.hrtime.bigint();
      await direct.query("select 1");
      trips.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    console.log(`one round trip to the remote (select 1, plain client): median ${quantile(trips, 0.5).toFixed(3)} ms`);

    const rows = async (client: pg.Client, sql: string, params: unknown[]) => (await client.query(sql, params)).rowCount ?? 0;
    await compare(
      "plain: a pg client through the source (tenant reader role, the view) vs a pg client on the remote",
      "through source", "direct",
      (c, i) => rows(viaSource, c.sql("wh_analytics"), c.params(i)),
      (c, i) => rows(direct, c.sql("analytics"), c.params(i)),
    );
    // The runner takes SQL text only: the parameter is written in (integers).
    const viaRunner = async (schema: string, c: Case, i: number) =>
      Number((await viaSource.query("select (sextant.query($1, 1000)).row_count as n", [inline(c, schema, i)])).rows[0].n);
    await compare(
      "sextant.query: Sextant's query runner on the source's table vs on a local copy of it (same tenant, same session)",
      "source table", "local table",
      (c, i) => viaRunner("wh_analytics", c, i),
      (c, i) => viaRunner("bench_local", c, i),
    );

    // What an agent sees: the MCP query tool over HTTP, end to end (auth, audit, admission, text).
    await sextant(local.adminUrl, ["tenant", "update", "bench", "--max-rows", "1000", "--rate-per-minute", "100000000",
      "--rate-per-hour", "1000000000", "--rate-per-day", "1000000000"]);
    const token = (await sextant(local.adminUrl, ["token", "create", "--tenant", "bench", "--name", "bench-sources", "--role", "analyst"])).trim();
    const serve = await startServe(local.adminUrl);
    try {
      const { client } = await connectHttp(`http://127.0.0.1:${serve.port}`, token);
      const viaMcp = async (schema: string, c: Case, i: number) => {
        const res = (await client.callTool({ name: "query", arguments: { sql: inline(c, schema, i), max_rows: 1000 } })) as {
          isError?: boolean; structuredContent?: { row_count?: number }; content?: { text?: string }[];
        };
        if (res.isError) throw new Error(`MCP query failed: ${res.content?.[0]?.text}`);
        return Number(res.structuredContent?.row_count ?? 0);
      };
      await compare(
        "MCP query: the query tool over HTTP (SDK client, sextant serve) on the source's table vs on the local copy",
        "source table", "local table",
        (c, i) => viaMcp("wh_analytics", c, i),
        (c, i) => viaMcp("bench_local", c, i),
      );
      await client.close();
    } finally {
      await stopChild(serve.child);
    }
  } finally {
    for (const c of clients) await c.end().catch(() => {});
    await local.close();
    await remote.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
