/**
 * The bench's measurements: interleaved MCP calls, concurrent HTTP clients (and the servers'
 * CPU per call), the price of Sextant's SQL called straight as the tenant role, `sextant
 * serve`'s ready time, RSS, and Sextant's /metrics at the end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import pg from "pg";
import { freePort } from "../test/helpers/ports.ts";
import { sextantBin } from "./install.ts";
import { opSql, type Fixture, type Op, type Target } from "./targets.ts";

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

export async function call(client: Client, target: Target, op: Op): Promise<{ ms: number; text: string }> {
  const { tool, args } = target.ops[op];
  const t = performance.now();
  const r = await client.callTool({ name: tool, arguments: args });
  const ms = performance.now() - t;
  const text = ((r.content ?? []) as { type: string; text?: string }[]).map((c) => c.text ?? "").join("\n");
  if (r.isError) throw new Error(`${target.name} ${op}: ${text.slice(0, 300)}`);
  return { ms, text };
}

/**
 * One run: for each op, `warmup` calls per target, then `calls` rounds in which every target
 * makes one call, in an order that rotates each round, so load on the machine hits them alike.
 * Returns the median per op and target, and the text of each target's last answer per op.
 */
export async function interleavedRun(targets: Target[], clients: Map<Target, Client>, ops: readonly Op[], calls: number, warmup: number) {
  const medians = new Map<Op, Map<Target, number>>();
  const texts = new Map<Op, Map<Target, string>>();
  for (const op of ops) {
    const ms = new Map(targets.map((t) => [t, [] as number[]]));
    const text = new Map<Target, string>();
    for (const t of targets) for (let i = 0; i < warmup; i++) text.set(t, (await call(clients.get(t)!, t, op)).text);
    for (let i = 0; i < calls; i++) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(i + k) % targets.length]!;
        ms.get(t)!.push((await call(clients.get(t)!, t, op)).ms);
      }
    }
    medians.set(op, new Map(targets.map((t) => [t, median(ms.get(t)!)])));
    texts.set(op, text);
  }
  return { medians, texts };
}

/** `clients` HTTP clients per target each calling the point lookup for `seconds`; targets take turns. */
export async function concurrentRun(targets: Target[], clients: number, seconds: number) {
  const out = new Map<Target, { rate: number; errors: number; cpuMsPerCall: number }>();
  for (const t of targets) {
    const cs = await Promise.all(Array.from({ length: clients }, () => t.connect()));
    await Promise.all(cs.map(async (c) => { for (let i = 0; i < 5; i++) await call(c, t, "point"); }));
    let n = 0, errors = 0;
    const end = performance.now() + seconds * 1000;
    const started = performance.now();
    // The server's CPU time per call: what a call costs it whatever else the machine is doing.
    const cpuBefore = cpuMs(t.pid());
    await Promise.all(cs.map(async (c) => {
      while (performance.now() < end) {
        try { await call(c, t, "point"); n++; } catch { errors++; }
      }
    }));
    out.set(t, { rate: n / ((performance.now() - started) / 1000), errors, cpuMsPerCall: (cpuMs(t.pid()) - cpuBefore) / Math.max(n, 1) });
    await Promise.all(cs.map((c) => c.close().catch(() => {})));
  }
  return out;
}

/** Sextant's SQL called straight, as the tenant role: point lookup through sextant.query vs the plain statement, describe_table. */
export async function sqlCosts(f: Fixture, role: string, calls: number) {
  const c = new pg.Client({ connectionString: f.url });
  await c.connect();
  try {
    await c.query(`set role ${role}`);
    const sql = opSql(f).point;
    const cases: [string, string, unknown[]][] = [
      ["plain", sql, []],
      ["query", "select * from sextant.query($1)", [sql]],
      ["describe_wide", "select * from sextant.describe_table($1, $2)", ["wide_snapshot", "catalog_01"]],
      ["describe_film", "select * from sextant.describe_table($1, $2)", ["film", f.pagila]],
    ];
    const ms = new Map(cases.map(([k]) => [k, [] as number[]]));
    for (let i = 0; i < calls + 10; i++) {
      for (const [k, text, values] of cases) {
        const t = performance.now();
        await c.query(text, values);
        if (i >= 10) ms.get(k)!.push(performance.now() - t);
      }
    }
    return Object.fromEntries([...ms].map(([k, v]) => [k, median(v)])) as Record<string, number>;
  } finally {
    await c.end();
  }
}

/** Starts `sextant serve` on DATABASE_URL; resolves when /ready answers 200, with the time that took. */
export async function startServe(url: string): Promise<{ child: ChildProcess; port: number; readyMs: number; cpuMs: number }> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [sextantBin, "serve"], {
    env: { ...process.env, DATABASE_URL: url, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", SEXTANT_DEMO: "0" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sextant serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/ready`)).status === 200) break;
    } catch { /* not listening yet */ }
    if (performance.now() - started > 120_000) throw new Error("sextant serve was not ready within 120 s");
    await new Promise((r) => setTimeout(r, 10));
  }
  return { child, port, readyMs: performance.now() - started, cpuMs: cpuMs(child.pid) };
}

/** CPU time (user + system) a process has used so far, in ms (Linux; clock ticks of 10 ms). */
export function cpuMs(pid: number | undefined): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
}

/** Resident memory of a process in MB (Linux). */
export function rssMb(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Sextant's Prometheus metrics (GET /metrics answers loopback without a token). */
export async function fetchMetrics(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!r.ok) throw new Error(`GET /metrics: ${r.status}`);
  return r.text();
}

/** Where a run's metrics go: bench/METRICS.txt beside bench/RESULTS.md, else `<out>.metrics.txt`. */
export function metricsPath(out: string): string {
  return path.basename(out) === "RESULTS.md" ? path.join(path.dirname(out), "METRICS.txt") : `${out.replace(/\.md$/, "")}.metrics.txt`;
}
