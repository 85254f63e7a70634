// Measures answer quality with a real provider (README: Ask in plain English). Usage:
//   SEXTANT_URL=http://localhost:4000 SEXTANT_TOKEN=sxt_… node --import tsx test/ask/quality.ts questions.json
// questions.json: [{"question": "…", "expect": ["500", "Acme"]}, …] — `expect` holds the figures
// (or words) the true answer contains, from SQL you ran yourself. Prints one line per question
// and a summary; exits 1 when any answer misses.
import fs from "node:fs";
import { pathToFileURL } from "node:url";

export interface Case {
  question: string;
  expect: string[];
}
export interface Outcome {
  question: string;
  verdict: "correct" | "wrong" | "stopped";
  missing: string[];
  steps: number;
  tokens: number;
  seconds: number;
  sql: string[];
  note?: string;
}

/** Asks each question once through POST /ask and checks the answer text for the expected figures. */
export async function measure(url: string, token: string, cases: Case[]): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const c of cases) {
    const started = Date.now();
    const res = await fetch(`${url}/ask`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify({ question: c.question }) });
    const text = await res.text();
    const events = text.split("\n\n").map((b) => ({ event: /^event: (.+)$/m.exec(b)?.[1], data: /^data: (.+)$/m.exec(b)?.[1] })).filter((e) => e.event && e.data);
    const last = events.at(-1);
    const data = last?.data ? JSON.parse(last.data) : (() => { try { return JSON.parse(text); } catch { return {}; } })();
    const seconds = (Date.now() - started) / 1000;
    if (last?.event !== "answer") {
      out.push({ question: c.question, verdict: "stopped", missing: c.expect, steps: data.steps ?? 0, tokens: data.tokens ?? 0, seconds, sql: [], note: data.message ?? `HTTP ${res.status}` });
      continue;
    }
    const missing = c.expect.filter((x) => !String(data.text).toLowerCase().includes(x.toLowerCase()));
    out.push({ question: c.question, verdict: missing.length ? "wrong" : "correct", missing, steps: data.steps, tokens: data.tokens, seconds, sql: data.details.sql.map((q: { sql: string }) => q.sql) });
  }
  return out;
}

/** One line per question, then counts and averages. */
export function report(outcomes: Outcome[]): string {
  const lines = outcomes.map((o) => `${o.verdict.padEnd(7)} ${o.steps} steps ${o.tokens} tokens ${o.seconds.toFixed(1)} s  ${o.question}${o.missing.length ? `  (missing: ${o.missing.join(", ")})` : ""}${o.note ? `  (${o.note})` : ""}`);
  const n = outcomes.length || 1;
  const count = (v: Outcome["verdict"]) => outcomes.filter((o) => o.verdict === v).length;
  const avg = (f: (o: Outcome) => number) => (outcomes.reduce((s, o) => s + f(o), 0) / n).toFixed(1);
  lines.push(`${count("correct")}/${outcomes.length} correct, ${count("wrong")} wrong, ${count("stopped")} stopped; per question ${avg((o) => o.steps)} steps, ${avg((o) => o.tokens)} tokens, ${avg((o) => o.seconds)} s`);
  return lines.join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [file] = process.argv.slice(2);
  if (!file || !process.env.SEXTANT_URL || !process.env.SEXTANT_TOKEN) {
    console.error("usage: SEXTANT_URL=… SEXTANT_TOKEN=… node --import tsx test/ask/quality.ts questions.json");
    process.exit(2);
  }
  const outcomes = await measure(process.env.SEXTANT_URL, process.env.SEXTANT_TOKEN, JSON.parse(fs.readFileSync(file, "utf8")) as Case[]);
  console.log(report(outcomes));
  process.exit(outcomes.every((o) => o.verdict === "correct") ? 0 : 1);
}
