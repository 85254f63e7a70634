/**
 * Pipeline load throughput, measured side by side in one run:
 *   - 1,000,000 customers as JSON pages (1,000 per page) from the local shop API;
 *   - the same rows as a CSV file;
 *   - the floor: a plain COPY of that CSV file through node-postgres into a typed table.
 * Each pipeline run happens in its own `sextant worker` process, whose peak RSS (VmHWM) is
 * read at 100k and 1M rows to show that memory stays flat as the row count grows.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { asTenant } from "../src/cli/pipeline.ts";
import { projectRoot } from "../src/db/paths.ts";
import { startShopApi } from "../src/demo/shopApi.ts";

const log = (line: string) => process.stderr.write(`${line}\n`);

function writeCsv(file: string, rows: number): void {
  const fd = fs.openSync(file, "w");
  fs.writeSync(fd, "id,name,email,country,signed_up_at,vip,city,zip\n");
  let chunk = "";
  for (let i = 1; i <= rows; i++) {
    chunk += `${i},Customer ${i},customer${i}@example.com,${["FR", "DE", "US", "JP"][i % 4]},${new Date(Date.UTC(2024, 0, 1 + (i % 365))).toISOString()},${i % 10 === 0},City ${i % 17},${10000 + i}\n`;
    if (chunk.length > 1 << 20) {
      fs.writeSync(fd, chunk);
      chunk = "";
    }
  }
  fs.writeSync(fd, chunk);
  fs.closeSync(fd);
}

/** Runs one pipeline to the end in a fresh `sextant worker`; returns seconds (run start → end) and the worker's peak RSS. */
async function runInWorker(adminUrl: string, dataDir: string, tenant: string, name: string, extraEnv: Record<string, string> = {}): Promise<{ seconds: number; rows: number; peakMb: number }> {
  const worker = spawn(process.execPath, [path.join(projectRoot, "bin/sextant.mjs"), "worker"], {
    env: { ...process.env, DATABASE_URL: adminUrl, SEXTANT_SOURCE_ALLOW_HOSTS: "127.0.0.1:*", SEXTANT_SOURCE_FILE_DIR: path.join(dataDir, "files"), LOG_LEVEL: "warn", SEXTANT_WORKER_CONCURRENCY: "1", ...extraEnv },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const runId = await asTenant(admin, tenant, "admin", async () => (await admin.query("select id from sextant.run_materialization($1)", [name])).rows[0].id);
    let peakKb = 0;
    for (;;) {
      const status = fs.readFileSync(`/proc/${worker.pid}/status`, "utf8");
      peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
      const { rows } = await admin.query(
        "select status, error, extract(epoch from finished_at - started_at) as s, progress from sextant.materialization_runs where id = $1", [runId]);
      if (rows[0].status === "succeeded") {
        const loaded = Object.values(rows[0].progress as Record<string, { rows: number }>).reduce((n, e) => n + e.rows, 0);
        return { seconds: Number(rows[0].s), rows: loaded, peakMb: Math.round(peakKb / 1024) };
      }
      if (rows[0].status === "failed" || rows[0].status === "cancelled") throw new Error(`bench run ${name} ${rows[0].status}: ${rows[0].error}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await admin.end();
    worker.kill("SIGTERM");
    await new Promise((r) => worker.once("exit", r));
  }
}

export async function benchMaterialize(adminUrl: string, dataDir: string): Promise<string[]> {
  const results = ["\n### Pipeline loads (rows/s; each run in its own `sextant worker`, peak RSS = VmHWM)\n",
    "| load | rows | seconds | rows/s | ÷ plain COPY | worker peak RSS |", "| --- | --- | --- | --- | --- | --- |"];
  const sizes = (process.env.BENCH_LOAD_ROWS ?? "100000,1000000").split(",").map(Number);
  const big = Math.max(...sizes);
  fs.mkdirSync(path.join(dataDir, "files"), { recursive: true });
  const csv = path.join(dataDir, "files", "customers.csv");
  writeCsv(csv, big);
  const apis = await Promise.all(sizes.map((n) => startShopApi({ customers: n, pageSize: 1000 })));
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await asTenant(admin, "bench", "admin", async () => {
      await admin.query("select sextant.provision_schema('loads')");
      for (const [i, n] of sizes.entries()) {
        await admin.query("select sextant.create_pipeline($1)", [JSON.stringify({
          name: `api_${n}`, target_schema: "t_bench__loads",
          source: { name: "shop", kind: "http", base_url: apis[i]!.url },
          entities: [{ name: `api_customers_${n}`, path: "/customers", records_path: "data", pagination: { type: "page", size_param: "per_page", size: 1000 } }],
        })]);
      }
      await admin.query("select sextant.create_pipeline($1)", [JSON.stringify({
        name: "csv", target_schema: "t_bench__loads", source: { name: "files", kind: "csv" }, entities: [{ name: "csv_customers", file: "customers.csv" }],
      })]);
    });

    // The floor: the same CSV through a plain COPY into a typed table.
    await admin.query(`create table public.copy_floor (id bigint, name text, email text, country text, signed_up_at timestamptz, vip boolean, city text, zip bigint)`);
    const t0 = performance.now();
    await pipeline(fs.createReadStream(csv, { highWaterMark: 1 << 20 }), admin.query(copyFrom("copy public.copy_floor from stdin with (format csv, header true)")));
    const floorS = (performance.now() - t0) / 1000;
    const floorRate = big / floorS;
    results.push(`| plain COPY of the CSV (node-postgres) | ${big} | ${floorS.toFixed(2)} | ${Math.round(floorRate)} | 1.00× | |`);
    log(results.at(-1)!);
    await admin.query("drop table public.copy_floor");

    const c = await runInWorker(adminUrl, dataDir, "bench", "csv");
    results.push(`| CSV file pipeline | ${c.rows} | ${c.seconds.toFixed(2)} | ${Math.round(c.rows / c.seconds)} | **${((c.seconds / c.rows) / (floorS / big)).toFixed(2)}×** (target ≤ 2×) | ${c.peakMb} MB |`);
    log(results.at(-1)!);
    for (const n of sizes) {
      const r = await runInWorker(adminUrl, dataDir, "bench", `api_${n}`);
      results.push(`| JSON pages from the HTTP API (1,000/page, + _raw jsonb) | ${r.rows} | ${r.seconds.toFixed(2)} | ${Math.round(r.rows / r.seconds)} | ${((r.seconds / r.rows) / (floorS / big)).toFixed(2)}× | ${r.peakMb} MB |`);
      log(results.at(-1)!);
    }
    // V8 grows its heap lazily; with the old space capped at 64 MB the largest load still
    // completes, which shows the memory a load needs does not grow with the row count.
    const capped = await runInWorker(adminUrl, dataDir, "bench", `api_${big}`, { NODE_OPTIONS: "--max-old-space-size=64" });
    results.push(`| the same ${capped.rows} JSON rows, worker heap capped at 64 MB | ${capped.rows} | ${capped.seconds.toFixed(2)} | ${Math.round(capped.rows / capped.seconds)} | ${((capped.seconds / capped.rows) / (floorS / big)).toFixed(2)}× | ${capped.peakMb} MB |`);
    log(results.at(-1)!);
  } finally {
    await admin.end();
    await Promise.all(apis.map((a) => a.close()));
  }
  return results;
}
