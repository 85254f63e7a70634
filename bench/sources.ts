/**
 * Sources (issue 18): the cost of reading another PostgreSQL through a source. Two embedded
 * PostgreSQL servers on this machine (loopback): the remote holds analytics.events (200,000
 * rows); Sextant, installed in the local one, imports it as source `wh` of tenant `bench`.
 * Each query runs as the tenant's reader role through the source's view, and the same SQL runs
 * directly on the remote database (its own login, one warm connection each), alternating, so
 * both see the same machine load. Prints medians, p95 and the ratios (target <= 1.5x for the
 * point lookup and the aggregate). Usage: npm run bench:sources [-- --runs 300]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { openEmbedded } from "../src/db/embedded.ts";
import { installDatabase } from "../src/install.ts";
import { addSource } from "../src/sources/index.ts";
import { freePort } from "../test/helpers/ports.ts";

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

async function main() {
  const dirs = [0, 1].map(() => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-bench-src-"));
    fs.chmodSync(d, 0o755);
    return d;
  });
  const remote = await openEmbedded({ dataDir: dirs[0]!, port: await freePort(), dbName: "warehouse" });
  const local = await openEmbedded({ dataDir: dirs[1]!, port: await freePort(), dbName: "sextant_bench" });
  const clients: pg.Client[] = [];
  const connect = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    clients.push(c);
    return c;
  };
  try {
    const r = await connect(remote.adminUrl);
    await r.query(`
      create role sx_reader login password '${PASSWORD}';
      create schema analytics;
      create table analytics.events (id int primary key, customer int not null, amount numeric not null, note text not null);
      insert into analytics.events select i, i % 5000, (i % 997) * 1.5, 'event ' || i from generate_series(1, ${ROWS}) as i;
      grant usage on schema analytics to sx_reader;
      grant select on all tables in schema analytics to sx_reader;`);
    await r.query("vacuum analyze analytics.events");
    const remoteUrl = new URL(remote.adminUrl);
    remoteUrl.username = "sx_reader";
    remoteUrl.password = PASSWORD;

    await installDatabase(local.adminUrl);
    const admin = await connect(local.adminUrl);
    await admin.query("select sextant_private.create_tenant('bench', 'Bench', array[]::text[])");
    const port = Number(remoteUrl.port);
    await addSource(admin, [`127.0.0.1:${port}`], { tenant: "bench", name: "wh", url: remoteUrl.toString().replace("localhost", "127.0.0.1"), schemas: ["analytics"] });

    // The tenant's session as the server runs it: the reader role, read-only, its statement timeout.
    const viaSource = await connect(local.adminUrl);
    await viaSource.query("set role sextant_t_bench; set default_transaction_read_only = on; set statement_timeout = 15000");
    const direct = await connect(remoteUrl.toString());

    const plan = (await viaSource.query(`explain (verbose, costs off) ${CASES[1]!.sql("wh_analytics")}`)).rows.map((x) => x["QUERY PLAN"]).join("\n");
    const pushed = /Remote SQL: .*GROUP BY/.test(plan);

    console.log(`sources bench: ${ROWS} remote rows, ${RUNS} runs per case (after 20 warm-up), PostgreSQL ${(await r.query("show server_version")).rows[0].server_version} both sides, loopback`);
    console.log(`aggregate pushed down to the remote: ${pushed ? "yes" : "NO"}`);
    const results: { name: string; source: number; directMs: number; ratio: number; p95s: number; p95d: number; target?: number }[] = [];
    for (const c of CASES) {
      const tSource: number[] = [];
      const tDirect: number[] = [];
      for (let i = 0; i < RUNS + 20; i++) {
        const order = i % 2 === 0 ? ([["s", viaSource], ["d", direct]] as const) : ([["d", direct], ["s", viaSource]] as const);
        for (const [kind, client] of order) {
          const sql = c.sql(kind === "s" ? "wh_analytics" : "analytics");
          const t0 = process.hrtime.bigint();
          const res = await client.query(sql, c.params(i));
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          if (res.rowCount === 0) throw new Error(`${c.name}: no rows (${kind})`);
          if (i >= 20) (kind === "s" ? tSource : tDirect).push(ms);
        }
      }
      const s = quantile(tSource, 0.5);
      const d = quantile(tDirect, 0.5);
      results.push({ name: c.name, source: s, directMs: d, ratio: s / d, p95s: quantile(tSource, 0.95), p95d: quantile(tDirect, 0.95), target: c.target });
    }
    console.log("case                              through source    direct       ratio   target");
    for (const x of results) {
      const verdict = x.target === undefined ? "-" : `<= ${x.target}x ${x.ratio <= x.target ? "met" : "NOT met"}`;
      console.log(
        `${x.name.padEnd(33)} ${x.source.toFixed(3).padStart(8)} ms  ${x.directMs.toFixed(3).padStart(8)} ms  ${x.ratio.toFixed(2).padStart(6)}x   ${verdict}` +
          `   (p95 ${x.p95s.toFixed(3)} / ${x.p95d.toFixed(3)} ms)`,
      );
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
