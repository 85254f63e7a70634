/**
 * GraphQL clients that leave mid-request (1cdcea3): more of them than the pool has connections,
 * and a request that bundles a field that fails on its own with one that runs until the client
 * leaves. The pool must come back whole (no connection kept, none idle in a transaction), and
 * the audit must say SX499 only for what the leaving cancelled.
 */
import pg from "pg";
import { describe, expect, test } from "vitest";
import { createToken } from "../helpers/db.ts";
import { eventually, gql } from "../helpers/graphql.ts";
import { useTestServer } from "../helpers/setup.ts";

const { db, server } = useTestServer();

/** A statement that runs until cancelled or timed out, marked so pg_stat_activity can find it. */
const endless = (mark: string) => `with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) as ${mark} from r`;

const auditOf = (principal: string, tenant = "acme") =>
  db.admin.query("select tool, outcome, error_code from sextant.audit_events where tenant_slug = $2 and principal = $1 order by id", [principal, tenant])
    .then((r) => r.rows as { tool: string; outcome: string; error_code: string | null }[]);

/** The server login's backends by state (the test server's pool is db.auth: 8 connections). */
const serverBackends = () =>
  db.admin.query("select state, count(*)::int as n from pg_stat_activity where usename = 'sextant_authenticator' and datname = current_database() group by 1")
    .then((r) => Object.fromEntries(r.rows.map((x) => [x.state, x.n])) as Record<string, number>);

const runningQueries = () =>
  db.admin.query(`select count(*)::int as n from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() and query like '%from "sextant"."query"(%'`)
    .then((r) => r.rows[0].n as number);

function post(token: string, body: object, signal?: AbortSignal) {
  return fetch(`${server.url}/graphql`, {
    method: "POST",
    signal,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

describe("GraphQL clients that leave", () => {
  test("twelve requests that leave mid-query (the pool has 8): all cancelled and audited SX499, the pool comes back whole", async () => {
    const who = "gone-many";
    const token = await createToken(db, "acme", who, "analyst");
    const aborts = Array.from({ length: 12 }, () => new AbortController());
    const pending = aborts.map((a, i) =>
      post(token, { query: "query ($sql: String!) { query(sql: $sql) { rowCount } }", variables: { sql: endless(`gone_many_${i}`) } }, a.signal)
        .then((r) => r.text()));
    // Seven or eight run; the others wait for a connection, and are aborted before they take one.
    const seen: unknown[] = [];
    const eight = await eventually(async () => {
      const n = await runningQueries();
      seen.push([n, await serverBackends()]);
      return n >= 7; // (one of the pool's 8 may be the audit's)
    }, 15_000);
    expect(eight, JSON.stringify(seen.slice(-3))).toBe(true);
    for (const a of aborts) a.abort();
    for (const p of pending) await expect(p).rejects.toThrow();
    expect(await eventually(async () => (await runningQueries()) === 0, 5000)).toBe(true);
    const events = await eventually(async () => ((await auditOf(who)).length >= 12 ? auditOf(who) : undefined), 10_000);
    expect(events).toEqual(Array(12).fill({ tool: "graphql:query", outcome: "refused", error_code: "SX499" }));
    // Nothing held: no backend of the server's login in a transaction, at most the pool's 8.
    const backends = await eventually(async () => {
      const b = await serverBackends();
      return !b["idle in transaction"] && !b.active ? b : undefined;
    }, 5000);
    expect(backends).toBeDefined();
    expect(Object.values(backends ?? {}).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(8);
    // Eight at once still get an answer each (every pooled connection is usable).
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      gql(server.url, token, `{ query(sql: "select ${i} + 1 as answer from (select count(*) from generate_series(1, 200000)) as g") { rows } }`)));
    expect(answers.map((a) => a.body)).toEqual(Array.from({ length: 8 }, (_, i) => ({ data: { query: { rows: [{ answer: i + 1 }] } } })));
  });

  test("a field that failed on its own keeps its own error in the audit when the client leaves later, over another field", async () => {
    const who = "gone-bundle";
    const token = await createToken(db, "acme", who, "analyst");
    const forbidden = "select * from globex_sales.orders";
    // Alone, with its client staying: its own refusal.
    const alone = await gql(server.url, token, "query ($sql: String!) { query(sql: $sql) { rowCount } }", { sql: forbidden });
    expect(alone.body.errors?.length).toBe(1);
    const ownEvents = await eventually(() => auditOf(who), 10_000);
    expect(ownEvents).toHaveLength(1);
    const own = ownEvents[0]!;
    expect(own.error_code).not.toBe("SX499");
    expect(own.outcome).not.toBe("ok");
    // Bundled with an endless field, the client leaving once the endless one runs.
    const abort = new AbortController();
    const pending = post(token, {
      query: "query ($bad: String!, $slow: String!) { a: query(sql: $bad) { rowCount } b: query(sql: $slow) { rowCount } }",
      variables: { bad: forbidden, slow: endless("gone_bundle") },
    }, abort.signal).then((r) => r.text());
    const started = await eventually(async () => (await runningQueries()) === 1, 10_000);
    if (!started) abort.abort();
    expect(started, started ? "" : await pending.catch(String)).toBe(true);
    abort.abort();
    await expect(pending).rejects.toThrow();
    const events = await eventually(async () => ((await auditOf(who)).length >= 3 ? auditOf(who) : undefined), 10_000);
    const key = (e: { error_code: string | null }) => e.error_code ?? "";
    expect(events?.slice(1).sort((x, y) => key(x).localeCompare(key(y)))).toEqual(
      [own, { tool: "graphql:query", outcome: "refused", error_code: "SX499" }].sort((x, y) => key(x).localeCompare(key(y))));
  });
  test("a mutation whose client leaves while it waits on a lock is cancelled and rolled back whole; one whose client stays commits", async () => {
    const who = "gone-mutation";
    const token = await createToken(db, "demo", who, "admin");
    const mutation = (description: string) => ({
      query: `mutation ($d: String!) { createKnowledgeNote(input: { knowledgeNote: { tableRef: "shop.orders", description: $d, owner: "gone" } }) { knowledgeNote { description } } }`,
      variables: { d: description },
    });
    const notes = (description: string) =>
      db.admin.query("select count(*)::int as n from sextant.knowledge_notes where description = $1", [description]).then((r) => r.rows[0].n as number);
    const waiting = () =>
      db.admin.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and usename = 'sextant_authenticator' and datname = current_database()")
        .then((r) => r.rows[0].n as number);
    // The admin holds a lock that every insert into the table waits for.
    const holder = new pg.Client({ connectionString: db.adminUrl });
    await holder.connect();
    try {
      await holder.query("begin; lock table sextant.knowledge_notes in share mode");
      const abort = new AbortController();
      const pending = post(token, mutation("left while waiting"), abort.signal).then((r) => r.text());
      expect(await eventually(async () => (await waiting()) === 1, 10_000)).toBe(true);
      abort.abort();
      await expect(pending).rejects.toThrow();
      // Cancelled while the lock is still held: not waiting for it any more.
      expect(await eventually(async () => (await waiting()) === 0, 5000)).toBe(true);
      await holder.query("commit");
    } finally {
      await holder.query("rollback").catch(() => {});
      await holder.end();
    }
    expect(await notes("left while waiting")).toBe(0);
    const stayed = await gql(server.url, token, mutation("stayed").query, mutation("stayed").variables);
    expect(stayed.body).toEqual({ data: { createKnowledgeNote: { knowledgeNote: { description: "stayed" } } } });
    expect(await notes("stayed")).toBe(1);
    const events = await eventually(async () => ((await auditOf(who, "demo")).length >= 2 ? auditOf(who, "demo") : undefined), 10_000);
    expect(events).toEqual([
      { tool: "graphql:createKnowledgeNote", outcome: "refused", error_code: "SX499" },
      { tool: "graphql:createKnowledgeNote", outcome: "ok", error_code: null },
    ]);
  });
});
