import pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { loadConfig } from "../src/config.ts";
import { authenticatorUrl } from "../src/db/migrate.ts";
import { createPool } from "../src/db/pool.ts";
import { installDatabase } from "../src/install.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { eventually } from "./helpers/graphql.ts";
import { callOk, callRows, connectHttp, textOf } from "./helpers/mcpClient.ts";
import { PG15_MISSING, startPg15, type Pg15 } from "./helpers/pg15.ts";
import { startStandby, type Standby } from "./helpers/pgStandby.ts";

const DB = "sextant_rr";
let primary: Pg15;
let standby: Standby;
let pool: pg.Pool;
let server: RunningServer;
let analyst: Client;
let viewer: Client;

/** Where a read-only `query` call ran: true on the standby (in recovery), false on the primary. */
async function ranOnStandby(client: Client = viewer): Promise<boolean> {
  const r = await callRows(client, "query", { sql: "select pg_is_in_recovery() as standby" });
  return (r.rows as { standby: boolean }[])[0]!.standby;
}

describe.skipIf(PG15_MISSING)("SEXTANT_READ_URL: a streaming standby made by pg_basebackup (PostgreSQL 15)", () => {
  beforeAll(async () => {
    primary = await startPg15();
    await primary.sql(`create database ${DB}`);
    const adminUrl = primary.url(DB);
    await installDatabase(adminUrl);
    await primary.sql(`
      select sextant_private.create_tenant('acme', 'Acme Corp', array['acme_sales']);
      select sextant_private.create_tenant('globex', 'Globex', array['globex_ops']);
      set role sextant_owner;
      create table acme_sales.orders (id int primary key, amount numeric not null);
      insert into acme_sales.orders select i, i * 10 from generate_series(1, 50) i;
      create table globex_ops.shipments (id int primary key, secret_note text not null);
      insert into globex_ops.shipments select i, 'globex secret ' || i from generate_series(1, 20) i;
      reset role;`, [], DB);
    const [a] = await primary.sql<{ t: string }>("select sextant_private.create_api_token('acme', 'rr-analyst', 'analyst', null) as t", [], DB);
    const [v] = await primary.sql<{ t: string }>("select sextant_private.create_api_token('acme', 'rr-viewer', 'viewer', null) as t", [], DB);
    standby = await startStandby(primary);
    pool = createPool(await authenticatorUrl(adminUrl), 5);
    const config = loadConfig({ DATABASE_URL: adminUrl, PORT: "0", SEXTANT_READ_URL: standby.url(adminUrl), SEXTANT_READ_MAX_LAG_MS: "1000" });
    server = await startServer({ config, pool, log: pino({ level: "silent" }), port: 0 });
    ({ client: analyst } = await connectHttp(server.url, a!.t));
    ({ client: viewer } = await connectHttp(server.url, v!.t));
  }, 240_000);

  afterAll(async () => {
    await analyst?.close();
    await viewer?.close();
    await server?.close();
    await pool?.end();
    await standby?.close();
    await primary?.close();
  });

  test("read-only tools run on the standby, as the tenant's role: its rights and its walls hold there", async () => {
    expect(await eventually(() => ranOnStandby(), 10_000)).toBe(true);
    const who = await callOk(viewer, "whoami");
    expect(who).toMatchObject({ tenant: "acme", database_role: "sextant_t_acme" });
    const orders = await callRows(viewer, "query", { sql: "select count(*)::int as n, pg_is_in_recovery() as standby from acme_sales.orders" });
    expect(orders.rows).toEqual([{ n: 50, standby: true }]);
    // Crossing over to another tenant is refused on the standby too (the same roles and grants).
    const crossing = await viewer.callTool({ name: "query", arguments: { sql: "select * from globex_ops.shipments" } });
    expect(crossing.isError).toBe(true);
    expect(textOf(crossing)).toMatch(/^error SX404: .*cannot read/);
    const escape = await viewer.callTool({ name: "query", arguments: { sql: "select set_config('role', 'sextant_t_globex', true)" } });
    expect(escape.isError).toBe(true);
    // Audit and rate counts were written on the primary.
    const audited = await eventually(async () => (await primary.sql<{ n: number }>(
      "select count(*)::int as n from sextant.audit_events where principal = 'rr-viewer' and tool = 'query'", [], DB))[0]!.n >= 3, 5000);
    expect(audited).toBe(true);
    const health = await (await fetch(`${server.url}/health`)).json();
    expect(health.read_replica).toMatchObject({ status: "in use" });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^sextant_read_routing_total\{target="read"\} [1-9]/m);
    expect(metrics).toMatch(/^sextant_pool_connections\{pool="read",state="idle"\} \d+/m);
  });

  test("writes go to the primary, and the writer then reads their own write there", async () => {
    const saved = await analyst.callTool({ name: "save_learning", arguments: { learning: "orders.amount is in cents", table: "acme_sales.orders", confidence: 0.9 } });
    expect(saved.isError).toBeFalsy();
    expect(await ranOnStandby(analyst)).toBe(false); // read-your-writes, for SEXTANT_READ_MAX_LAG_MS
    const knowledge = await analyst.callTool({ name: "get_knowledge", arguments: { table: "acme_sales.orders" } });
    expect(textOf(knowledge)).toContain("orders.amount is in cents");
    expect(await eventually(() => ranOnStandby(analyst), 10_000)).toBe(true);
    // And the learning reached the standby by replication.
    expect(await eventually(async () => (await standby.sql<{ n: number }>("select count(*)::int as n from sextant.learnings", DB))[0]!.n === 1, 10_000)).toBe(true);
  });

  test("a standby lagging past SEXTANT_READ_MAX_LAG_MS is left for the primary until it catches up", async () => {
    await standby.sql("select pg_wal_replay_pause()");
    try {
      await primary.sql("insert into acme_sales.orders values (51, 510)", [], DB);
      expect(await eventually(async () => !(await ranOnStandby()), 15_000)).toBe(true);
      const r = await callRows(viewer, "query", { sql: "select count(*)::int as n from acme_sales.orders" });
      expect(r.rows).toEqual([{ n: 51 }]); // the primary's answer, not the paused standby's 50
    } finally {
      await standby.sql("select pg_wal_replay_resume()");
    }
    expect(await eventually(() => ranOnStandby(), 15_000)).toBe(true);
  });

  test("a standby that is down is left for the primary: calls keep answering, and come back when it does", async () => {
    await standby.stop();
    try {
      // Not one failed call, from the first one on (a failed standby call is retried on the primary).
      for (let i = 0; i < 5; i++) expect(await ranOnStandby()).toBe(false);
      const health = await (await fetch(`${server.url}/health`)).json();
      expect(health.read_replica.status).toMatch(/^not in use/);
      expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/^sextant_read_routing_total\{target="fallback"\} [1-9]/m);
    } finally {
      await standby.start();
    }
    expect(await eventually(() => ranOnStandby(), 20_000)).toBe(true);
  });
});
