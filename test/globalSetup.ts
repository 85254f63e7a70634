import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { openEmbedded } from "../src/db/embedded.ts";
import { loadDemo } from "../src/demo/loadDemo.ts";
import { installDatabase } from "../src/install.ts";
import { startPg15 } from "./helpers/pg15.ts";
import { freePort } from "./helpers/ports.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Admin URL of the template database; test files clone it. */
    templateUrl: string;
  }
}

export const TEMPLATE = "sextant_test_template";

/**
 * Starts one embedded PostgreSQL for the run, migrates a template database exactly as
 * production does, adds tenants acme and globex (one table each) and the demo tenant, and
 * marks it a template. Each test file clones it (helpers/db.ts).
 * SEXTANT_TEST_PG=15 runs the same on Debian's PostgreSQL 15 instead (helpers/pg15.ts): the
 * user's own database of issue 14 (CI runs the database-door files that way too, .ci/run).
 */
export default async function setup(project: TestProject) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-test-"));
  fs.chmodSync(dataDir, 0o755);
  const db = process.env.SEXTANT_TEST_PG === "15" ? await openPg15() : await openEmbedded({ dataDir, port: await freePort(), dbName: TEMPLATE });
  await installDatabase(db.adminUrl);
  const admin = new pg.Client({ connectionString: db.adminUrl });
  await admin.connect();
  await admin.query("select sextant_private.create_tenant('acme', 'Acme Corp', array['acme_sales'])");
  await admin.query("select sextant_private.create_tenant('globex', 'Globex', array['globex_ops'])");
  await admin.query(`
    set role sextant_owner;
    create table acme_sales.orders (id int primary key, customer text not null, amount numeric not null);
    comment on table acme_sales.orders is 'Acme orders';
    insert into acme_sales.orders select i, 'acme customer ' || i, i * 10 from generate_series(1, 50) i;
    create table globex_ops.shipments (id int primary key, secret_note text not null);
    insert into globex_ops.shipments select i, 'globex secret ' || i from generate_series(1, 20) i;
    reset role;`);
  await loadDemo(admin);
  await admin.end();
  // A template must have no connections while it is cloned.
  const maintenance = new pg.Client({ connectionString: db.adminUrl.replace(`/${TEMPLATE}`, "/postgres") });
  await maintenance.connect();
  await maintenance.query(`alter database ${TEMPLATE} with is_template true`);
  await maintenance.end();

  project.provide("templateUrl", db.adminUrl);
  return async () => {
    await db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
}

/** The template database in a fresh PostgreSQL 15 cluster, shaped like openEmbedded's handle. */
async function openPg15() {
  const pg15 = await startPg15({ settings: { max_connections: "200" } });
  await pg15.sql(`create database ${TEMPLATE}`);
  return { adminUrl: pg15.url(TEMPLATE), close: () => pg15.close() };
}
