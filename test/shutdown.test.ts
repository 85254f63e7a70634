import type { ChildProcess } from "node:child_process";
import { beforeAll, describe, expect, test } from "vitest";
import { startServe } from "./helpers/cli.ts";
import { createToken } from "./helpers/db.ts";
import { eventually, gql } from "./helpers/graphql.ts";
import { useTestDatabase } from "./helpers/setup.ts";

const db = useTestDatabase();
let token: string;
beforeAll(async () => {
  token = await createToken(db, "acme", "shutdown-bot", "analyst");
});

/** A real `sextant serve` on the test database; resolves once it printed that it is ready. */
async function serve(env: Record<string, string>): Promise<{ child: ChildProcess; base: string; exited: Promise<number | null>; stderr: () => string }> {
  const { child, url, exited, stderr } = await startServe({ DATABASE_URL: db.adminUrl, SEXTANT_DEMO: "0", LOG_LEVEL: "info", ...env });
  return { child, base: url, exited, stderr };
}

describe("SIGTERM", () => {
  test("stops accepting, lets the call in flight finish and answer, audits it, then exits 0", async () => {
    const { child, base, exited, stderr } = await serve({ SEXTANT_SHUTDOWN_TIMEOUT_MS: "30000" });
    // A slow query, made slow deterministically: the table is locked until the test lets go.
    const locker = await db.admin.connect();
    try {
      await locker.query("begin; lock table acme_sales.orders in access exclusive mode");
      const call = gql(base, token, '{ query(sql: "select count(*) as n from acme_sales.orders") { rows } }');
      expect(await eventually(async () => (await db.admin.query(
        "select 1 from pg_stat_activity where usename = 'sextant_authenticator' and datname = current_database() and wait_event_type = 'Lock'")).rowCount, 20_000)).toBe(1);

      child.kill("SIGTERM");
      // New connections are refused while the call is still running.
      const refused = await eventually(async () => fetch(`${base}/health`).then(() => false, () => true), 10_000);
      expect(refused).toBe(true);
      expect(child.exitCode).toBeNull();

      await locker.query("rollback");
      const answer = await call;
      expect(answer.status).toBe(200);
      expect(answer.body.errors).toBeUndefined();
      const { rows: [{ n }] } = await db.admin.query("select count(*)::int as n from acme_sales.orders");
      expect(JSON.stringify(answer.body.data.query.rows)).toContain(String(n));
      expect(await exited).toBe(0);
      expect(stderr()).toContain("stopping");
    } finally {
      await locker.query("rollback").catch(() => {});
      locker.release();
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    // The audit queue was flushed before the pools closed.
    const { rows } = await db.admin.query(
      "select outcome, row_count from sextant.audit_events where principal = 'shutdown-bot' and tool = 'graphql:query'");
    expect(rows).toEqual([{ outcome: "ok", row_count: 1 }]);
  }, 180_000);
});
