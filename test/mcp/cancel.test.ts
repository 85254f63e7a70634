import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { describe, expect, test } from "vitest";
import type { Principal } from "../../src/auth/principal.ts";
import { createPool } from "../../src/db/pool.ts";
import { queryAsRole } from "../../src/db/queryAsRole.ts";
import { createToken } from "../helpers/db.ts";
import { eventually } from "../helpers/graphql.ts";
import { callRows, connectHttp, postMcp, stdioMcpClient } from "../helpers/mcpClient.ts";
import { PG15_MISSING, startPg15 } from "../helpers/pg15.ts";
import { useServer, useTestServer } from "../helpers/setup.ts";

// A caller that goes away mid-call cancels its statement: an HTTP client closing the connection
// (direct path and the SDK's), an MCP client's notifications/cancelled over stdio. Without it the
// statement ran on to the tenant's statement timeout (15 s here), holding a pooled connection.
const { db, server: direct } = useTestServer();
const sdk = useServer(db, { SEXTANT_MCP_DIRECT_CALLS: "0" });

/** A statement that runs until cancelled or timed out, marked so pg_stat_activity can find it. */
const endless = (mark: string) => `with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) as ${mark} from r`;

/** Backends running the marked statement now. */
const running = (mark: string) =>
  db.admin.query("select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()", [`%${mark}%`])
    .then((r) => r.rows[0].n as number);

const auditOf = (principal: string) =>
  db.admin.query("select tool, outcome, error_code from sextant.audit_events where tenant_slug = 'acme' and principal = $1 order by id", [principal])
    .then((r) => r.rows);

const call = (sql: string) => ({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "query", arguments: { sql } } });

describe("a caller that goes away cancels its statement", () => {
  for (const [path, server] of [["direct", direct], ["SDK", sdk]] as const) {
    test(`HTTP (${path} path): the client closing the connection cancels the query; it is audited as SX499, the server keeps serving`, async () => {
      // The cancel reads nothing pg deprecates (Client.activeQuery: a warning on stderr, gone in pg 9).
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
      process.on("warning", onWarning);
      const who = `gone-${path.toLowerCase()}`;
      const mark = `gone_${path.toLowerCase()}`;
      const token = await createToken(db, "acme", who, "analyst");
      const abort = new AbortController();
      const pending = fetch(`${server.url}/mcp`, {
        method: "POST",
        signal: abort.signal,
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}`, "mcp-protocol-version": "2025-06-18" },
        body: JSON.stringify(call(endless(mark))),
      }).then((r) => r.text());
      expect(await eventually(async () => (await running(mark)) === 1, 10_000)).toBe(true);
      const aborted = Date.now();
      abort.abort();
      await expect(pending).rejects.toThrow();
      expect(await eventually(async () => (await running(mark)) === 0, 5000)).toBe(true);
      expect(Date.now() - aborted).toBeLessThan(5000); // the statement timeout is 15 s
      const events = await eventually(async () => ((await auditOf(who)).length > 0 ? auditOf(who) : undefined), 10_000);
      expect(events).toEqual([{ tool: "query", outcome: "refused", error_code: "SX499" }]);
      // The same caller, and the pool, carry on.
      const res = await postMcp(`${server.url}/mcp`, token, call("select 41 + 1 as answer"), { "mcp-protocol-version": "2025-06-18" });
      expect(await res.text()).toContain("42");
      process.off("warning", onWarning);
      expect(warnings.filter((w) => w.includes("activeQuery"))).toEqual([]);
    });
  }

  test("GraphQL: the client closing the connection cancels the query; it is audited as SX499, the server keeps serving", async () => {
    const token = await createToken(db, "acme", "gone-graphql", "analyst");
    const post = (body: object, signal?: AbortSignal) =>
      fetch(`${direct.url}/graphql`, { method: "POST", signal, headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    const abort = new AbortController();
    const pending = post({ query: "query ($sql: String!) { query(sql: $sql) { rowCount } }", variables: { sql: endless("gone_graphql") } }, abort.signal).then((r) => r.text());
    // PostGraphile sends the SQL as a parameter: its statement is the call of sextant.query.
    const runningGraphql = () =>
      db.admin.query(`select count(*)::int as n from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() and query like '%from "sextant"."query"(%'`).then((r) => r.rows[0].n as number);
    expect(await eventually(async () => (await runningGraphql()) === 1, 10_000)).toBe(true);
    const aborted = Date.now();
    abort.abort();
    await expect(pending).rejects.toThrow();
    expect(await eventually(async () => (await runningGraphql()) === 0, 5000)).toBe(true);
    expect(Date.now() - aborted).toBeLessThan(5000); // the statement timeout is 15 s
    const events = await eventually(async () => ((await auditOf("gone-graphql")).length > 0 ? auditOf("gone-graphql") : undefined), 10_000);
    expect(events).toEqual([{ tool: "graphql:query", outcome: "refused", error_code: "SX499" }]);
    // The same caller, and the pool, carry on; requests that end with their client are not cancelled.
    for (let i = 0; i < 10; i++) {
      const res = await post({ query: `{ query(sql: "select ${i} + 1 as answer") { rows } }` });
      expect(await res.json()).toEqual({ data: { query: { rows: [{ answer: i + 1 }] } } });
    }
    expect((await auditOf("gone-graphql")).slice(1).every((e) => e.outcome === "ok")).toBe(true);
  });

  test("a call that finishes before its client leaves is not cancelled, and its connection goes back to the pool", async () => {
    const { client } = await connectHttp(direct.url, await createToken(db, "acme", "stays", "analyst"));
    try {
      for (let i = 0; i < 20; i++) expect((await callRows(client, "query", { sql: `select ${i} as n` })).rows).toEqual([{ n: i }]);
    } finally {
      await client.close();
    }
    expect((await auditOf("stays")).every((e) => e.outcome === "ok")).toBe(true);
  });

  test("stdio: notifications/cancelled (an SDK client's aborted call) cancels the query", async () => {
    const { client, transport } = stdioMcpClient(db.adminUrl, ["--tenant", "acme", "--role", "analyst"]);
    await client.connect(transport);
    try {
      const abort = new AbortController();
      const pending = client.callTool({ name: "query", arguments: { sql: endless("gone_stdio") } }, CallToolResultSchema, { signal: abort.signal, timeout: 60_000 });
      expect(await eventually(async () => (await running("gone_stdio")) === 1, 10_000)).toBe(true);
      abort.abort();
      await expect(pending).rejects.toThrow();
      expect(await eventually(async () => (await running("gone_stdio")) === 0, 5000)).toBe(true);
      // The session carries on.
      const next = await client.callTool({ name: "query", arguments: { sql: "select 7 as seven" } });
      expect(JSON.stringify(next.structuredContent)).toContain("7");
    } finally {
      await client.close();
    }
  });

  test("the cancel takes no connection of its own: a login at its connection limit still has its statement cancelled", async () => {
    // PostgreSQL's cancel request (the backend's pid and secret key) is no session: no slot, no
    // login, and it cannot reach another backend (a pid alone can, on another server behind the
    // same address). pg_cancel_backend from a new session failed here (53300) and the statement
    // ran on to its timeout.
    const login = `sextant_cancel_${randomBytes(4).toString("hex")}`;
    await db.admin.query(`create role ${login} login password 'cancel-pw' connection limit 1; grant sextant_t_acme__analyst to ${login}`);
    const url = new URL(db.adminUrl);
    url.username = login;
    url.password = "cancel-pw";
    const pool = createPool(url.toString(), 1);
    const p: Principal = { tenant: "acme", accessLevel: "analyst", dbRole: "sextant_t_acme__analyst", subject: "at-limit", authMethod: "api_token", statementTimeoutMs: 60_000 };
    try {
      const abort = new AbortController();
      const pending = queryAsRole(pool, p, endless("gone_at_limit"), [], { signal: abort.signal });
      pending.catch(() => {});
      expect(await eventually(async () => (await running("gone_at_limit")) === 1, 10_000)).toBe(true);
      abort.abort();
      await expect(pending).rejects.toMatchObject({ code: "SX499" });
      expect(await eventually(async () => (await running("gone_at_limit")) === 0, 5000)).toBe(true);
      // The pool carries on (its connection was closed, not reused).
      expect(await queryAsRole(pool, p, "select 6 * 7 as answer", [])).toEqual([{ answer: 42 }]);
    } finally {
      await pool.end();
      await db.admin.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", [login]);
      await db.admin.query(`drop role ${login}`);
    }
  });

  test("a cancel request that never arrives (a proxy that does not pass it): the statement's own failure is reported, not SX499", async () => {
    // A loopback stand-in for a pooler that forwards sessions but drops PostgreSQL's cancel
    // requests (16 bytes, code 80877102), as some do: the caller's leaving then cancels nothing,
    // the statement runs on and fails for its own reason, and that reason is what the call ends
    // with (and is audited), not SX499.
    const target = new URL(db.adminUrl);
    let cancelsDropped = 0;
    const proxy = net.createServer((inbound) => {
      inbound.once("data", (first) => {
        if (first.length === 16 && first.readInt32BE(4) === 80877102) {
          cancelsDropped++;
          inbound.destroy();
          return;
        }
        const outbound = net.connect(Number(target.port), target.hostname, () => {
          outbound.write(first);
          inbound.pipe(outbound).pipe(inbound);
        });
        outbound.on("error", () => inbound.destroy());
        inbound.on("error", () => outbound.destroy());
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const viaProxy = new URL(db.adminUrl);
    viaProxy.port = String((proxy.address() as net.AddressInfo).port);
    const pool = createPool(viaProxy.toString(), 1);
    const p: Principal = { tenant: "acme", accessLevel: "analyst", dbRole: "sextant_t_acme__analyst", subject: "cancel-dropped", authMethod: "api_token", statementTimeoutMs: 60_000 };
    // Counts to six million (about three seconds here: it must still run when the abort comes),
    // then divides by zero: 22012, its own failure.
    const slowThenFails = "with recursive r(i) as (select 1 union all select i + 1 from r where i < 6000000) select 1 / (count(*) - 6000000) as gone_dropped from r";
    try {
      const abort = new AbortController();
      const pending = queryAsRole(pool, p, slowThenFails, [], { signal: abort.signal });
      pending.catch(() => {});
      expect(await eventually(async () => (await running("gone_dropped")) === 1, 10_000)).toBe(true);
      abort.abort();
      await expect(pending).rejects.toMatchObject({ code: "22012" });
      expect(cancelsDropped).toBe(1); // the cancel was sent, and went nowhere
      // The pool carries on (that connection was closed, not reused).
      expect(await queryAsRole(pool, p, "select 6 * 7 as answer", [])).toEqual([{ answer: 42 }]);
    } finally {
      await pool.end();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  test.skipIf(PG15_MISSING)("over TLS, to a server that takes no connection without it: the cancel request still reaches the statement", async () => {
    const pg15 = await startPg15();
    try {
      // A self-signed certificate, and host lines for TLS only (hostssl).
      const dataDir = (await pg15.sql<{ d: string }>("select current_setting('data_directory') as d"))[0]!.d;
      const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
        "-keyout", path.join(dataDir, "server.key"), "-out", path.join(dataDir, "server.crt")], { encoding: "utf8" });
      expect(made.status, made.stderr).toBe(0);
      if (process.getuid?.() === 0) spawnSync("chown", ["postgres:", path.join(dataDir, "server.key"), path.join(dataDir, "server.crt")]);
      fs.chmodSync(path.join(dataDir, "server.key"), 0o600);
      fs.writeFileSync(path.join(dataDir, "pg_hba.conf"), "hostssl all all 127.0.0.1/32 scram-sha-256\n");
      await pg15.sql("alter system set ssl = on");
      await pg15.sql("select pg_reload_conf()");
      const tls = { ssl: { rejectUnauthorized: false } };
      const admin = createPool(pg15.adminUrl, 2, undefined, tls);
      await eventually(() => admin.query("select ssl from pg_stat_ssl where pid = pg_backend_pid()").then((r) => r.rows[0]?.ssl === true, () => false), 5000);
      await admin.query("create role t_reader; create role t_login login password 'tls-pw' in role t_reader");
      const pool = createPool(pg15.url("postgres", "t_login", "tls-pw"), 1, undefined, tls);
      const p: Principal = { tenant: "t", accessLevel: "analyst", dbRole: "t_reader", subject: "tls", authMethod: "api_token", statementTimeoutMs: 60_000 };
      const runningThere = () => admin.query("select count(*)::int as n from pg_stat_activity where state = 'active' and query like '%gone_tls%' and pid <> pg_backend_pid()").then((r) => r.rows[0].n as number);
      try {
        const abort = new AbortController();
        const pending = queryAsRole(pool, p, endless("gone_tls"), [], { signal: abort.signal });
        pending.catch(() => {});
        expect(await eventually(async () => (await runningThere()) === 1, 10_000)).toBe(true);
        const overTls = await admin.query("select bool_and(s.ssl) as tls from pg_stat_ssl as s join pg_stat_activity as a using (pid) where a.usename = 't_login'");
        expect(overTls.rows[0].tls).toBe(true);
        abort.abort();
        await expect(pending).rejects.toMatchObject({ code: "SX499" });
        expect(await eventually(async () => (await runningThere()) === 0, 5000)).toBe(true);
      } finally {
        await pool.end();
        await admin.end();
      }
    } finally {
      await pg15.close();
    }
  });
});
