import { afterEach, describe, expect, test } from "vitest";
import { RateLimiter } from "../src/audit/rateLimiter.ts";
import type { Principal } from "../src/auth/principal.ts";
import { eventually } from "./helpers/graphql.ts";
import { useTestDatabase } from "./helpers/setup.ts";
import { earlyInAMinute, withMinuteCap, withMinuteRowLocked } from "./helpers/rateLimits.ts";

// Rate-limit counting as the server does it (its login, sextant_authenticator): exact admission,
// and the leases a fast caller's calls are counted in (src/audit/rateLimiter.ts).
const db = useTestDatabase();

const principal = (subject: string): Principal => ({
  tenant: "acme", accessLevel: "analyst", dbRole: "sextant_t_acme__analyst", subject, authMethod: "api_token", statementTimeoutMs: 15_000,
});

/** The calls counted in a principal's current minute and hour, and the tenant's day. */
async function counted(subject: string): Promise<{ minute: number; hour: number }> {
  const { rows } = await db.admin.query(
    `select coalesce(sum(hits) filter (where bucket = $1 and window_start = date_trunc('minute', now(), 'UTC')), 0)::int as minute,
            coalesce(sum(hits) filter (where bucket = $2 and window_start = date_trunc('hour', now(), 'UTC')), 0)::int as hour
       from sextant_private.rate_buckets`,
    [`p:acme:${subject}:minute`, `p:acme:${subject}:hour`]);
  return rows[0];
}

const lease = (who: string, wanted: number, least = 1) =>
  db.auth.query("select granted, counted_at from sextant_private.lease_calls('acme', $1, $2, $3)", [who, wanted, least]).then((r) => r.rows[0]);

describe("lease_calls and return_calls (SQL)", () => {
  test("a lease gets as many calls as every window has room for, or SX429 counting nothing; return_calls uncounts", async () => {
    await earlyInAMinute();
    await withMinuteCap(db, 10, async () => {
      expect((await lease("sql-lease", 4)).granted).toBe(4);
      await db.auth.query("select sextant_private.admit_calls('acme', 'sql-lease', 3)");
      const last = await lease("sql-lease", 8);
      expect(last.granted).toBe(3); // 7 of 10 used: the minute has room for 3
      expect(await counted("sql-lease")).toEqual({ minute: 10, hour: 10 });
      await expect(lease("sql-lease", 5)).rejects.toMatchObject({ code: "SX429", message: "rate limit reached: 10 calls per minute for you" });
      await expect(lease("sql-lease", 5, 2)).rejects.toMatchObject({ code: "SX429" });
      await expect(db.auth.query("select sextant_private.admit_calls('acme', 'sql-lease', 1)")).rejects.toMatchObject({ code: "SX429" });
      expect(await counted("sql-lease")).toEqual({ minute: 10, hour: 10 });
      // Two of the last lease unused: given back in the windows it was counted in.
      await db.auth.query("select sextant_private.return_calls('acme', 'sql-lease', 2, $1)", [last.counted_at]);
      expect(await counted("sql-lease")).toEqual({ minute: 8, hour: 8 });
      expect((await lease("sql-lease", 5, 2)).granted).toBe(2);
      // Never below zero, and nothing for a window that was never counted.
      await db.auth.query("select sextant_private.return_calls('acme', 'sql-lease', 1000, $1)", [last.counted_at]);
      expect(await counted("sql-lease")).toEqual({ minute: 0, hour: 0 });
      await db.auth.query("select sextant_private.return_calls('acme', 'sql-lease', 5, now() - interval '3 hours')");
      expect(await counted("sql-lease")).toEqual({ minute: 0, hour: 0 });
    });
    // Arguments that ask for nothing count nothing.
    for (const [wanted, least] of [[0, 0], [3, 5], [null, 1], [4, null]] as const) {
      expect((await lease("sql-lease-nothing", wanted as number, least as number)).granted).toBe(0);
    }
    expect(await counted("sql-lease-nothing")).toEqual({ minute: 0, hour: 0 });
  });

  test("leases and admissions at the same time, on 8 connections: never more than the limit, no deadlock", async () => {
    await earlyInAMinute();
    const granted = await withMinuteCap(db, 50, async () => {
      const tries = Array.from({ length: 60 }, (_, i) =>
        (i % 3 === 0
          ? db.auth.query("select sextant_private.admit_calls('acme', 'racer', 1)").then(() => 1)
          : lease("racer", 1 + (i % 7)).then((r) => r.granted as number)
        ).catch((e: { code?: string }) => {
          if (e.code !== "SX429") throw e; // a deadlock (40P01) or anything else fails the test
          return 0;
        }));
      return (await Promise.all(tries)).reduce((a, b) => a + b, 0);
    });
    expect(granted).toBe(50);
    expect(await counted("racer")).toEqual({ minute: 50, hour: 50 });
    await expect(db.auth.query("select sextant_private.return_calls('acme', 'x', 1, now())")).resolves.toBeDefined();
    // Only the server's login may count or uncount.
    const tenant = await db.admin.connect();
    try {
      await tenant.query("set role sextant_t_acme__admin");
      await expect(tenant.query("select sextant_private.return_calls('acme', 'racer', 50, now())")).rejects.toMatchObject({ code: "42501" });
      await expect(tenant.query("select * from sextant_private.lease_calls('acme', 'racer', 5, 1)")).rejects.toMatchObject({ code: "42501" });
    } finally {
      await tenant.query("reset role");
      tenant.release();
    }
  });
});

describe("return_calls and the admissions beside it (SQL)", () => {
  test("return_calls locks the windows in admit_calls' order (minute, hour, day): no deadlock with an admission of the same principal", async () => {
    // The rows as a server leaves them: the hour's row made at the hour's first call, the
    // minute's later, so the hour's comes first in the table. An admission holds the minute's
    // row and goes on to the hour's; return_calls took them in the table's order (hour first).
    await earlyInAMinute();
    const hour = "p:acme:ret-order:hour";
    const minute = "p:acme:ret-order:minute";
    await db.admin.query(`insert into sextant_private.rate_buckets (bucket, window_start, hits) values ('${hour}', date_trunc('hour', now(), 'UTC'), 10);
      insert into sextant_private.rate_buckets (bucket, window_start, hits) values ('${minute}', date_trunc('minute', now(), 'UTC'), 10)`);
    const admission = await db.admin.connect();
    try {
      await admission.query("begin");
      await admission.query("update sextant_private.rate_buckets set hits = hits + 1 where bucket = $1 and window_start = date_trunc('minute', now(), 'UTC')", [minute]);
      const returned = db.auth.query("select sextant_private.return_calls('acme', 'ret-order', 4, now())");
      returned.catch(() => {});
      const waiting = () => db.admin.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%return_calls(''acme'', ''ret-order''%'")
        .then((r) => r.rows[0].n === 1);
      expect(await eventually(waiting, 5000)).toBe(true);
      // The admission's next window: a deadlock (40P01 for one of the two) if return_calls holds it.
      await admission.query("update sextant_private.rate_buckets set hits = hits + 1 where bucket = $1 and window_start = date_trunc('hour', now(), 'UTC')", [hour]);
      await admission.query("commit");
      await expect(returned).resolves.toBeDefined();
    } finally {
      await admission.query("rollback").catch(() => {});
      admission.release();
    }
    expect(await counted("ret-order")).toEqual({ minute: 7, hour: 7 });
  });
});

describe("RateLimiter (the server's admission)", () => {
  const limiters: RateLimiter[] = [];
  const limiter = () => {
    const l = new RateLimiter(db.auth);
    limiters.push(l);
    return l;
  };
  afterEach(async () => {
    await Promise.all(limiters.splice(0).map((l) => l.close()));
  });

  /** One call's admission as callTool does it: what a lease covers costs no statement. */
  async function admit(l: RateLimiter, p: Principal): Promise<"leased" | "counted" | "refused"> {
    const a = await l.admission(p);
    if (!a) return "leased";
    try {
      await a.alone();
      return "counted";
    } catch (e) {
      if ((e as { code?: string }).code === "SX429") return "refused";
      throw e;
    }
  }

  test("a slow caller is counted call by call; a fast one a lease at a time, and what a lease left is given back on close", async () => {
    await earlyInAMinute();
    const l = limiter();
    const slow = principal("slow-caller");
    for (let i = 0; i < 5; i++) {
      expect(await admit(l, slow)).toBe("counted");
      expect(await counted("slow-caller")).toEqual({ minute: i + 1, hour: i + 1 });
      await new Promise((r) => setTimeout(r, 60));
    }
    const fast = principal("fast-caller");
    const ways: string[] = [];
    await withMinuteCap(db, 100_000, async () => {
      for (let i = 0; i < 300; i++) ways.push(await admit(l, fast));
    });
    expect(ways.filter((w) => w === "refused")).toEqual([]);
    // The first calls come before any rate is known; most of the rest need no statement.
    expect(ways.slice(0, 8)).toEqual(Array(8).fill("counted"));
    expect(ways.filter((w) => w === "leased").length).toBeGreaterThan(150);
    // Counted ahead: at least what was used, at most one lease (64) more.
    const ahead = (await counted("fast-caller")).minute;
    expect(ahead).toBeGreaterThanOrEqual(300);
    expect(ahead).toBeLessThanOrEqual(300 + 64);
    await l.close();
    expect(await counted("fast-caller")).toEqual({ minute: 300, hour: 300 });
  });

  test("a lease left unused is given back within about two seconds, without close", async () => {
    await earlyInAMinute();
    const l = limiter();
    const p = principal("idle-after-burst");
    await withMinuteCap(db, 100_000, async () => {
      for (let i = 0; i < 40; i++) await admit(l, p);
    });
    const back = await eventually(async () => (await counted("idle-after-burst")).minute === 40, 4000);
    expect(back).toBe(true);
    expect(await counted("idle-after-burst")).toEqual({ minute: 40, hour: 40 });
  });

  test("a lease whose count waited on a lock for longer than a lease lasts is not used: the call is counted on its own", async () => {
    // A lease's second (and its minute) is timed from when it was asked for, not from when the
    // answer came: the count's now() can be long before that (a lock wait), and calls used past
    // the end of its minute would be uncounted in the next.
    await earlyInAMinute();
    const l = limiter();
    const p = principal("slow-lease");
    // A burst: the ninth call asks for a lease.
    expect(await Promise.all(Array.from({ length: 8 }, () => admit(l, p)))).toEqual(Array(8).fill("counted"));
    await withMinuteRowLocked(db, "slow-lease", async (unlock) => {
      const ninth = admit(l, p);
      const waiting = () => db.admin.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%lease_calls(''acme'', ''slow-lease''%'")
        .then((r) => r.rows[0].n === 1);
      expect(await eventually(waiting, 5000)).toBe(true);
      await new Promise((r) => setTimeout(r, 1100)); // longer than a lease lasts (1 s)
      await unlock();
      expect(await ninth).toBe("counted");
    });
    // What the lease counted was given back before the call was counted on its own.
    expect(await counted("slow-lease")).toEqual({ minute: 9, hour: 9 });
  });

  test("after close (a server stopping with calls still running), a fast caller is counted call by call: no lease is left uncounted-back", async () => {
    await earlyInAMinute();
    const l = limiter();
    const p = principal("after-close");
    await l.close();
    const ways: string[] = [];
    for (let i = 0; i < 30; i++) ways.push(await admit(l, p));
    expect(ways).toEqual(Array(30).fill("counted"));
    expect(await counted("after-close")).toEqual({ minute: 30, hour: 30 });
  });

  test("a refused lease is not asked for again at once: a fast caller over its cap is refused with one statement per call", async () => {
    await earlyInAMinute();
    const l = limiter();
    const p = principal("over-cap");
    await withMinuteCap(db, 4, async () => {
      // A burst over the cap: the ninth call's lease is refused, and so is the call.
      const burst = await Promise.all(Array.from({ length: 8 }, () => admit(l, p)));
      expect(burst.filter((w) => w === "counted").length).toBe(4);
      expect(await admit(l, p)).toBe("refused");
      // The next call: its statement waits on the minute's row, so it can be seen.
      await withMinuteRowLocked(db, "over-cap", async (unlock) => {
        const next = admit(l, p);
        const waiting = () => db.admin.query("select query from pg_stat_activity where wait_event_type = 'Lock' and query like '%''over-cap''%'")
          .then((r) => r.rows.map((row) => row.query as string));
        const statements = await eventually(waiting, 5000);
        expect(statements).toHaveLength(1);
        expect(statements[0]).toContain("admit_calls(");
        expect(statements[0]).not.toContain("lease_calls(");
        await unlock();
        expect(await next).toBe("refused");
      });
    });
    expect(await counted("over-cap")).toEqual({ minute: 4, hour: 4 });
  });

  test("at a cap, two servers (limiters) together admit no more than the limit, and after close count exactly what they admitted", async () => {
    await earlyInAMinute();
    const [a, b] = [limiter(), limiter()];
    const p = principal("capped-fast");
    const ways = await withMinuteCap(db, 120, async () => {
      const run = async (l: RateLimiter) => {
        const out: string[] = [];
        for (let i = 0; i < 100; i++) out.push(await admit(l, p));
        return out;
      };
      return (await Promise.all([run(a), run(b)])).flat();
    });
    const admitted = ways.filter((w) => w !== "refused").length;
    expect(ways.filter((w) => w === "leased").length).toBeGreaterThan(0);
    expect(admitted).toBeLessThanOrEqual(120);
    expect(admitted).toBeGreaterThan(120 - 2 * 64);
    expect(ways.filter((w) => w === "refused").length).toBe(200 - admitted);
    await a.close();
    await b.close();
    expect(await counted("capped-fast")).toEqual({ minute: admitted, hour: admitted });
  });
});
