import { Writable } from "node:stream";
import pino from "pino";
import { expect, test } from "vitest";
import { eventually } from "./helpers/graphql.ts";
import { useTestDatabase } from "./helpers/setup.ts";
import { startTestWorker } from "./helpers/worker.ts";

const db = useTestDatabase();

test("the worker's minute-by-minute scheduler tick logs at debug, not info", async () => {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  const worker = await startTestWorker(db, { log: pino({ level: "debug" }, sink) });
  try {
    await db.admin.query("select graphile_worker.add_job('sextant_tick', '{}'::json, job_key => 'sextant_tick', job_key_mode => 'replace')");
    const done = await eventually(async () => lines.find((l) => /Completed task \d+ \(sextant_tick/.test(l.msg)), 20_000);
    expect(done).toBeDefined();
    expect(done!.level).toBe(20); // debug
    expect(lines.filter((l) => l.level >= 30 && /Completed task \d+ \(sextant_tick/.test(l.msg))).toEqual([]);
    expect(lines.some((l) => l.level === 30 && l.msg === "pipeline worker started")).toBe(true); // info still logs what matters
  } finally {
    await worker.stop();
  }
});
