import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { addSource, refreshSource } from "../../src/sources/index.ts";
import { createToken } from "../helpers/db.ts";
import { callOk, callRows, connectHttp, textOf } from "../helpers/mcpClient.ts";
import { PG15_MISSING, startPg15, type Pg15 } from "../helpers/pg15.ts";
import { useSourceServer } from "../helpers/remotePg.ts";

// Issue 18, failures: a source's server replaced by something that speaks nonsense, and
// Debian's PostgreSQL 15 as a remote beside the embedded 18. The failing source is named,
// the other source and local tables keep working, nothing stays connected, a refresh recovers.
const PASSWORD = "Failing-Remote-Passw0rd-8810";
let pg15: Pg15 | undefined;
let acme: Client;

const SCHEMA = (extra: string) => `
  create role sx_reader login password '${PASSWORD}';
  create schema analytics;
  create table analytics.items (id int primary key, label text not null);
  create index items_by_label on analytics.items (label);
  insert into analytics.items select i, 'item ' || i from generate_series(1, 300) as i;
  grant usage on schema analytics to sx_reader;
  grant select on all tables in schema analytics to sx_reader;
  ${extra}
  analyze analytics.items;`;

const { remote, db, server, withAdmin } = useSourceServer(SCHEMA(""), async ({ remote, withAdmin }) => {
  const allow = [`127.0.0.1:${remote.port}`];
  if (!PG15_MISSING) {
    pg15 = await startPg15();
    await pg15.sql("create database warehouse");
    await pg15.sql(SCHEMA("comment on table analytics.items is 'Items on PostgreSQL 15';"), [], "warehouse");
    allow.push(`127.0.0.1:${pg15.port}`);
  }
  await withAdmin(async (c) => {
    await addSource(c, allow, { tenant: "acme", name: "main", url: remote.url("sx_reader", PASSWORD), schemas: ["analytics"] });
    if (pg15) await addSource(c, allow, { tenant: "acme", name: "old", url: pg15.url("warehouse", "sx_reader", PASSWORD), schemas: ["analytics"] });
  });
});

beforeAll(async () => {
  acme = (await connectHttp(server.url, await createToken(db, "acme", "failures", "admin"))).client;
});

afterAll(async () => {
  await acme?.close();
  await pg15?.close();
});

describe("PostgreSQL 15 as the remote", () => {
  test.skipIf(PG15_MISSING)("list_databases, describe_table, query and pushdown through a source on PostgreSQL 15", async () => {
    const { rows } = (await callOk(acme, "list_databases")) as { rows: Record<string, unknown>[] };
    expect(rows.find((r) => r.database_name === "old")).toMatchObject({ status: "ok", table_count: 1, server_version: expect.stringMatching(/^15\./) });
    const d = (await callOk(acme, "describe_table", { table: "old_analytics.items" })) as Record<string, unknown>;
    expect(d).toMatchObject({ primary_key: ["id"], estimated_rows: 300 });
    expect(String(d.description)).toMatch(/^Items on PostgreSQL 15/);
    expect(d.indexes).toContainEqual({ name: "items_by_label", unique: false, primary: false, columns: ["label"] });
    const q = (await callRows(acme, "query", { sql: "select count(*)::int as n from old_analytics.items where label like 'item 1%'" })) as { rows: unknown[] };
    expect(q.rows).toEqual([{ n: 111 }]);
    const plan = JSON.stringify(((await callOk(acme, "explain_query", { sql: "select count(*) from old_analytics.items where id < 10" })) as { plan: unknown }).plan);
    expect(plan).toContain(`"Remote SQL":"SELECT count(*) FROM analytics.items WHERE ((id < 10))"`);
  });
});

describe("a source's server replaced by one that speaks nonsense", () => {
  test("the tool names the source; local tables and the other source work; nothing stays connected; the next refresh recovers", async () => {
    await remote.stop();
    const received: Buffer[] = [];
    const garbage = net.createServer((sock) => {
      sock.on("data", (d) => {
        received.push(d);
        sock.write("HTTP/1.1 400 Bad Request\r\ncontent-length: 9\r\n\r\nnonsense\n\u0000\u00ff\u0013garbage");
      });
      sock.on("error", () => {});
    });
    await new Promise<void>((r) => garbage.listen(remote.port, "127.0.0.1", r));
    try {
      // A fresh MCP session: the server's pooled sessions may hold a cached connection to the old server.
      const r = await acme.callTool({ name: "query", arguments: { sql: "select count(*) from main_analytics.items" } });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/SX502: source main is unreachable/);
      expect(textOf(r)).not.toContain(PASSWORD);
      expect((await callRows(acme, "query", { sql: "select count(*)::int as n from acme_sales.orders" })) as { rows: unknown[] }).toMatchObject({ rows: [{ n: 50 }] });
      if (pg15) {
        expect((await callRows(acme, "query", { sql: "select count(*)::int as n from old_analytics.items" })) as { rows: unknown[] }).toMatchObject({ rows: [{ n: 300 }] });
      }
      const failed = await withAdmin((c) => refreshSource(c, "acme", "main"));
      expect(failed.status).toBe("failed");
      expect(failed.last_error).toBeTruthy();
      expect(JSON.stringify(failed)).not.toContain(PASSWORD);
      // The previous tables stay; the password never went to the impostor.
      expect((await callOk(acme, "list_tables", { schema: "main_analytics" })) as { rows: unknown[] }).toMatchObject({ rows: [expect.objectContaining({ table_name: "items" })] });
      expect(Buffer.concat(received).toString("latin1")).not.toContain(PASSWORD);
      expect(received.length).toBeGreaterThan(0);
      // Every connection to it was closed by the local side.
      await new Promise((res) => setTimeout(res, 300));
      const open = await new Promise<number>((res, rej) => garbage.getConnections((e, n) => (e ? rej(e) : res(n))));
      expect(open).toBe(0);
    } finally {
      await new Promise<void>((r) => garbage.close(() => r()));
      await remote.start();
    }
    expect((await withAdmin((c) => refreshSource(c, "acme", "main"))).status).toBe("ok");
    const back = (await callRows(acme, "query", { sql: "select count(*)::int as n from main_analytics.items" })) as { rows: unknown[] };
    expect(back.rows).toEqual([{ n: 300 }]);
    // Remote sessions are bounded by the local pools (one cached connection per local session and mapping).
    const sessions = await remote.sql<{ n: number }>("select count(*)::int as n from pg_stat_activity where usename = 'sx_reader'");
    expect(sessions[0]!.n).toBeLessThanOrEqual(8 + 4);
    // postgres_fdw's own view of the admin session's connections: none left open to a server that is gone.
    const conns = await withAdmin(async (c) => (await c.query("select count(*)::int as n from sextant_private.postgres_fdw_get_connections() where not valid")).rows[0]);
    expect(conns).toEqual({ n: 0 });
  }, 60_000);
});
