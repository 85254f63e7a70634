/**
 * The bench's data: Pagila (test/fixtures/pagila, a pg_dump in plain format) in `public` of
 * database `pagila`, and the generated catalog (bench/catalog.sql) beside it. Loaded through
 * node-postgres (no psql needed): SQL text as simple queries, COPY blocks through COPY FROM STDIN.
 */
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

const here = path.dirname(new URL(import.meta.url).pathname);
const pagila = path.resolve(here, "../test/fixtures/pagila");

/** Runs a pg_dump plain-format file: statements between COPY blocks, each COPY block streamed. */
async function runDump(client: pg.Client, file: string, schema: string): Promise<void> {
  let text = fs.readFileSync(file, "utf8");
  if (schema !== "public") text = text.replace(/\bpublic\./g, `${schema}.`).replace(/^ALTER SCHEMA public OWNER.*$/m, "");
  const lines = text.split("\n");
  let sql: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^COPY .* FROM stdin;$/.test(line)) {
      if (sql.length) await client.query(sql.join("\n"));
      sql = [];
      const end = lines.indexOf("\\.", i + 1);
      const data = lines.slice(i + 1, end).map((l) => `${l}\n`).join("");
      await pipeline(Readable.from([data]), client.query(copyFrom(line.replace(/;$/, ""))));
      i = end;
    } else if (!line.startsWith("\\")) {
      sql.push(line);
    }
  }
  if (sql.length) await client.query(sql.join("\n"));
}

/** Loads Pagila into `schema` (default public; the dump names it everywhere). */
export async function loadPagila(url: string, schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    if (schema !== "public") await c.query(`create schema ${schema}`);
    await runDump(c, path.join(pagila, "pagila-schema.sql"), schema);
    await runDump(c, path.join(pagila, "pagila-data.sql"), schema);
    await c.query(`vacuum analyze`);
  } finally {
    await c.end();
  }
}

/** Creates database `pagila` with Pagila and `schemas` schemas of the generated catalog. */
export async function loadFixtures(adminUrl: string, pagilaUrl: string, schemas: number, log: (s: string) => void): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query("create database pagila");
  await admin.end();
  let t = performance.now();
  await loadPagila(pagilaUrl, "public");
  log(`Pagila loaded in ${Math.round(performance.now() - t)} ms`);
  const c = new pg.Client({ connectionString: pagilaUrl });
  await c.connect();
  try {
    t = performance.now();
    await c.query(fs.readFileSync(path.join(here, "catalog.sql"), "utf8"));
    for (let s = 1; s <= schemas; s++) await c.query("select pg_temp.bench_catalog_schema($1)", [s]);
    await c.query("vacuum analyze");
    const { rows } = await c.query("select count(*)::int as n from pg_class where relkind = 'r' and relnamespace::regnamespace::text like 'catalog\\_%'");
    log(`catalog of ${rows[0].n} tables in ${schemas} schemas built in ${Math.round(performance.now() - t)} ms`);
  } finally {
    await c.end();
  }
}
