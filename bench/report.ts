/** The peer bench's markdown: latency per op and run with ratios, concurrency, SQL costs, checks. */
import { median } from "./measure.ts";
import { OP_TITLES, OPS, type Op, type Target } from "./targets.ts";

export interface Results {
  when: string;
  server: string;
  machine: string;
  quick: boolean;
  runs: number;
  calls: number;
  schemas: number;
  seconds: number;
  targets: Target[];
  latency: Map<Op, Map<Target, number>>[];
  concurrency: Map<Target, { rate: number; errors: number; cpuMsPerCall: number }>[];
  sql: Record<string, number>[];
  readyMs: number[];
  /** CPU time `sextant serve` used until ready: what the start costs, whatever the load. */
  readyCpuMs: number[];
  texts: Map<Op, Map<Target, string>>;
  rss: Record<string, number>;
}

const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "—");
const x = (n: number) => `${n.toFixed(2)}×`;

export function report(r: Results, metricsFile?: string): string {
  const by = (name: string): Target => r.targets.find((t) => t.name === name)!;
  const [fh, dh, sh, fs, ds, sp, ss] = ["floor http", "dbhub http", "sextant http", "floor stdio", "dbhub stdio", "server-postgres", "sextant stdio"].map(by) as [Target, Target, Target, Target, Target, Target, Target];
  const lines: string[] = [];
  const push = (...l: string[]) => lines.push(...l);
  push(`# Peer bench${r.quick ? " (quick)" : ""}`, "",
    `${r.when} · ${r.server} · ${r.machine} · ${r.runs} run(s), ${r.calls} calls per op and target, interleaved · catalog of ${r.schemas * 100 + 1} tables`,
    "", "Medians in ms; ×floor is Sextant ÷ the floor of the same transport in the same run.",
    ...(metricsFile ? ["", `Sextant's \`/metrics\` (Prometheus text) as \`sextant serve\` saw this run, read at its end: \`${metricsFile}\` beside this file.`] : []), "",
    "| op | run | floor http | dbhub http | Sextant http | ×floor | floor stdio | dbhub stdio | server-postgres | Sextant stdio | ×floor |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const checks: [string, string, boolean][] = [];
  for (const op of OPS) {
    const limit = op.startsWith("describe") ? 1.5 : 1.3;
    let ok = true, faster = true;
    const ratios: string[] = [];
    r.latency.forEach((run, i) => {
      const m = (t: Target) => run.get(op)!.get(t)!;
      const rh = m(sh) / m(fh), rs = m(ss) / m(fs);
      ok &&= rh <= limit && rs <= limit;
      faster &&= m(sh) < m(dh) && m(ss) < m(ds) && m(ss) < m(sp);
      ratios.push(`${x(rh)} / ${x(rs)}`);
      push(`| ${OP_TITLES[op]} | ${i + 1} | ${f2(m(fh))} | ${f2(m(dh))} | **${f2(m(sh))}** | ${x(rh)} | ${f2(m(fs))} | ${f2(m(ds))} | ${f2(m(sp))} | **${f2(m(ss))}** | ${x(rs)} |`);
    });
    checks.push([`${OP_TITLES[op]}: ≤ ${limit}× floor, HTTP / stdio`, ratios.join(", "), ok]);
    checks.push([`${OP_TITLES[op]}: faster than dbhub and server-postgres`, faster ? "every run" : "not in every run", faster]);
  }

  push("", "### 16 concurrent HTTP clients (point lookup)", "",
    "Server CPU ms per call: the server process's CPU time over the calls it answered (less sensitive to a busy machine than calls/s).", "",
    `| run | floor calls/s | dbhub calls/s | Sextant calls/s | ×floor | errors (floor / dbhub / Sextant) | server CPU ms per call (floor / dbhub / Sextant) |`, "| --- | --- | --- | --- | --- | --- | --- |");
  let concOk = true;
  const concRatios: string[] = [];
  r.concurrency.forEach((run, i) => {
    const c = (t: Target) => run.get(t)!;
    const ratio = c(sh).rate / c(fh).rate;
    concOk &&= ratio >= 0.9 && c(sh).rate > c(dh).rate && c(sh).errors === 0;
    concRatios.push(x(ratio));
    push(`| ${i + 1} | ${c(fh).rate.toFixed(0)} | ${c(dh).rate.toFixed(0)} | **${c(sh).rate.toFixed(0)}** | ${x(ratio)} | ${c(fh).errors} / ${c(dh).errors} / ${c(sh).errors} | ${f2(c(fh).cpuMsPerCall)} / ${f2(c(dh).cpuMsPerCall)} / **${f2(c(sh).cpuMsPerCall)}** |`);
  });
  checks.push(["16 clients: ≥ 0.9× floor, above dbhub, 0 errors", concRatios.join(", "), concOk]);

  push("", "### Sextant's SQL, called straight as the tenant role (node-postgres, interleaved)", "",
    "| run | plain point lookup | sextant.query point lookup | above plain | describe_table, 40 cols (2,000-table catalog) | describe_table (film) |",
    "| --- | --- | --- | --- | --- | --- |");
  let sqlOk = true, descOk = true;
  r.sql.forEach((s, i) => {
    const above = s.query! - s.plain!;
    sqlOk &&= above <= 0.5;
    descOk &&= s.describe_wide! <= 3;
    push(`| ${i + 1} | ${f2(s.plain!)} | ${f2(s.query!)} | **${f2(above)}** | **${f2(s.describe_wide!)}** | ${f2(s.describe_film!)} |`);
  });
  checks.push(["sextant.query point lookup ≤ 0.5 ms above the plain statement", r.sql.map((s) => f2(s.query! - s.plain!)).join(", "), sqlOk]);
  checks.push(["describe_table in SQL on the 2,000-table catalog ≤ 3 ms", r.sql.map((s) => f2(s.describe_wide!)).join(", "), descOk]);

  const ready = median(r.readyMs);
  checks.push(["`sextant serve` ready ≤ 2 s on a migrated database (median of 3 starts)",
    `${r.readyMs.map((m) => m.toFixed(0)).join(", ")} ms (CPU used: ${r.readyCpuMs.map((m) => m.toFixed(0)).join(", ")} ms)`, ready <= 2000]);
  const rss = Math.max(...Object.values(r.rss));
  checks.push(["RSS ≤ 250 MB after the whole bench", Object.entries(r.rss).map(([k, v]) => `${k} ${v.toFixed(0)} MB`).join(", "), rss <= 250]);

  push("", "### Size of the 1,000-row answer (text the model reads; tokens ≈ characters / 4)", "",
    `| ${r.targets.map((t) => t.name).join(" | ")} |`, `| ${r.targets.map(() => "---").join(" | ")} |`,
    `| ${r.targets.map((t) => `${(r.texts.get("wide")!.get(t)!.length / 4000).toFixed(1)}k`).join(" | ")} |`);

  push("", "### Targets (issue 14)", "", "| target | per run | met |", "| --- | --- | --- |");
  for (const [what, values, ok] of checks) push(`| ${what} | ${values} | ${ok ? "yes" : "**no**"} |`);
  push("");
  return lines.join("\n");
}
