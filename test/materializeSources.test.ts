import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { SOURCE_KINDS, sourceKind } from "../src/worker/sources/index.ts";
import { usePipelineFile } from "./helpers/pipelines.ts";

// Source kinds (src/worker/sources/): HTTP pagination styles and pacing, CSV files and URLs,
// another PostgreSQL; and the registry that SQL's list of kinds must match.

const { db, workers, asAdmin, provision, requestRun, waitFor, count } = usePipelineFile();
const startTestWorker = (staleMs?: number) => workers.start(staleMs === undefined ? {} : { staleMs });

describe("the registry of source kinds", () => {
  test("every kind a pipeline may name (SQL) has a loader, and every loader a kind", async () => {
    const { rows } = await db.admin.query("select sextant_exec.source_kinds() as kinds");
    expect(Object.keys(SOURCE_KINDS).sort()).toEqual([...rows[0].kinds].sort());
    expect(() => sourceKind("ftp")).toThrow("source kind ftp is not one of http, csv, postgres");
    expect(() => sourceKind("constructor")).toThrow(/is not one of/);
  });
});

describe("HTTP pagination styles, rate limit, CSV over HTTP", () => {
  test("offset, next link in the body, Link header; requests spaced by requests_per_second; a CSV by URL", { timeout: 30_000 }, async () => {
    const times: number[] = [];
    const records = (from: number, n: number) => Array.from({ length: Math.max(0, Math.min(n, 45 - from)) }, (_, i) => ({ id: from + i + 1, label: `item ${from + i + 1}` }));
    const server = http.createServer((req, res) => {
      times.push(Date.now());
      const u = new URL(req.url!, "http://x");
      const send = (body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(200, { "content-type": u.pathname.endsWith(".csv") ? "text/csv" : "application/json", ...headers });
        res.end(typeof body === "string" ? body : JSON.stringify(body));
      };
      const page = Number(u.searchParams.get("page") ?? 1);
      if (u.pathname === "/offset") return send({ items: records(Number(u.searchParams.get("offset")), Number(u.searchParams.get("limit"))) });
      if (u.pathname === "/body-link") return send({ results: records((page - 1) * 10, 10), links: { next: page * 10 < 45 ? `/body-link?page=${page + 1}` : null } });
      if (u.pathname === "/header-link") {
        return send(records((page - 1) * 20, 20), page * 20 < 45 ? { link: `<http://127.0.0.1:${(server.address() as { port: number }).port}/header-link?page=${page + 1}>; rel="next"` } : {});
      }
      if (u.pathname === "/export.csv") return send("code,amount\nA,1.5\nB,2\nC,\n");
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      await provision("acme", "pages");
      const def = {
        name: "pages", target_schema: "t_acme__pages",
        source: { name: "api", kind: "http", base_url: base, requests_per_second: 20 },
        entities: [
          { name: "by_offset", path: "/offset", records_path: "items", pagination: { type: "offset", limit: 10 } },
          { name: "by_body_link", path: "/body-link", records_path: "results", pagination: { type: "next_link", next_path: "links.next" } },
          { name: "by_header_link", path: "/header-link", pagination: { type: "next_link" } },
        ],
      };
      const csv = { name: "csv_url", target_schema: "t_acme__pages", source: { name: "files", kind: "csv", base_url: base }, entities: [{ name: "export", url: "/export.csv" }] };
      await asAdmin("acme", async (c) => {
        await c.query("select sextant.create_pipeline($1)", [JSON.stringify(def)]);
        await c.query("select sextant.create_pipeline($1)", [JSON.stringify(csv)]);
      });
      await startTestWorker();
      const run = await waitFor(await requestRun("acme", "pages"), ["succeeded", "failed"]);
      expect(run.error).toBeNull();
      for (const t of ["by_offset", "by_body_link", "by_header_link"]) {
        expect(await count(`t_acme__pages.${t}`)).toBe(45);
        expect(await count(`(select distinct id from t_acme__pages.${t}) as d`)).toBe(45);
      }
      // 20 requests a second: no two requests of the run closer than ~50 ms (some slack for timers).
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(40);
      const csvRun = await waitFor(await requestRun("acme", "csv_url"), ["succeeded", "failed"]);
      expect(csvRun.error).toBeNull();
      expect((await db.admin.query("select code, amount from t_acme__pages.export order by code")).rows).toEqual([
        { code: "A", amount: "1.5" }, { code: "B", amount: "2" }, { code: "C", amount: null }]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe("CSV and PostgreSQL sources", () => {
  test("CSV files load with sampled types, fall back to text when a later value does not fit, and stay inside the file directory", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-csv-"));
    fs.mkdirSync(path.join(dir, "sub"));
    const lines = ["Id,Full Name,Signup Date,Score,Active"];
    for (let i = 1; i <= 5000; i++) lines.push(`${i},"Person ${i}, Jr.",2024-01-${String((i % 28) + 1).padStart(2, "0")},${i % 3 === 0 ? "" : i * 1.5},${i % 2 === 0}`);
    fs.writeFileSync(path.join(dir, "sub", "people.csv"), lines.join("\n") + "\n");
    const late = ["id,code"];
    for (let i = 1; i <= 4000; i++) late.push(`${i},${i === 3999 ? "N/A" : i}`);
    fs.writeFileSync(path.join(dir, "sub", "late.csv"), late.join("\n") + "\n");
    try {
      await provision("acme", "files");
      const def = { name: "files", target_schema: "t_acme__files", source: { name: "files", kind: "csv", directory: "sub" },
        entities: [{ name: "people", file: "people.csv" }, { name: "late", file: "late.csv" }], models: [] };
      await asAdmin("acme", (c) => c.query("select sextant.create_pipeline($1)", [JSON.stringify(def)]));
      await workers.start({ concurrency: 1, allowHosts: [], fileDir: dir });
      const run = await waitFor(await requestRun("acme", "files"), ["succeeded", "failed"]);
      expect(run.error).toBeNull();
      expect(run.progress.people).toMatchObject({ rows: 5000, done: true });
      const types = (await db.admin.query(
        "select table_name, column_name, data_type from information_schema.columns where table_schema = 't_acme__files' order by table_name, ordinal_position",
      )).rows.map((r) => `${r.table_name}.${r.column_name}:${r.data_type}`);
      expect(types).toEqual(["late.id:text", "late.code:text",
        "people.id:bigint", "people.full_name:text", "people.signup_date:date", "people.score:numeric", "people.active:boolean"]);
      expect(await count("t_acme__files.people where score is null")).toBe(1666);
      expect(await count("t_acme__files.late")).toBe(4000);

      const escape = { ...def, entities: [{ name: "passwd", file: "../../../../etc/passwd" }] };
      await asAdmin("acme", (c) => c.query("select sextant.create_pipeline($1)", [JSON.stringify(escape)]));
      const refusedRun = await waitFor(await requestRun("acme", "files"), ["succeeded", "failed"]);
      expect(refusedRun.error).toMatch(/outside the source directory|does not exist in the source directory/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a PostgreSQL source copies a query's result with the source's column types; its connection string is a secret", async () => {
    await provision("acme", "mirror");
    const def = { name: "mirror", target_schema: "t_acme__mirror", source: { name: "other", kind: "postgres", connection_string: { secret: "dsn" } },
      entities: [{ name: "big_orders", query: "select id, customer, amount, now()::date as seen_on from acme_sales.orders where amount >= 250" }],
      models: [{ name: "order_total", sql: "select sum(amount) as total, count(*) as n from {{ source('other', 'big_orders') }}" }] };
    await asAdmin("acme", async (c) => {
      await c.query("select sextant.create_pipeline($1)", [JSON.stringify(def)]);
      await c.query("select sextant.set_pipeline_secret('mirror', 'dsn', $1)", [db.adminUrl]);
    });
    await startTestWorker();
    const run = await waitFor(await requestRun("acme", "mirror"), ["succeeded", "failed"]);
    expect(run.error).toBeNull();
    const cols = (await db.admin.query(
      "select column_name, data_type from information_schema.columns where table_schema = 't_acme__mirror' and table_name = 'big_orders' order by ordinal_position",
    )).rows.map((r) => `${r.column_name}:${r.data_type}`);
    expect(cols).toEqual(["id:integer", "customer:text", "amount:numeric", "seen_on:date"]);
    const total = (await db.admin.query("select total::int, n from t_acme__mirror.order_total")).rows[0];
    expect(total).toEqual({ total: 9750, n: 26 });
    // A query that writes is refused by the source's read-only transaction.
    const writing = { ...def, entities: [{ name: "big_orders", query: "select lo_create(0) as id" }], models: [] };
    await asAdmin("acme", (c) => c.query("select sextant.create_pipeline($1)", [JSON.stringify(writing)]));
    const failed = await waitFor(await requestRun("acme", "mirror"), ["succeeded", "failed"]);
    expect(failed.error).toMatch(/read-only transaction/);
    expect(await count("acme_sales.orders")).toBe(50);
  });
});

