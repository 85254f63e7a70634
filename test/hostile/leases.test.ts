import { expect, test } from "vitest";
import { createToken } from "../helpers/db.ts";
import { eventually } from "../helpers/graphql.ts";
import { useServer, useTestServer } from "../helpers/setup.ts";
import { earlyInAMinute, withMinuteCap } from "../helpers/rateLimits.ts";

// Attacks on rate-limit leases (src/audit/rateLimiter.ts: a fast caller's calls counted up to 64
// at a time) through a real door, GraphQL over HTTP, whose requests are admitted one call each
// at the door (gate.admit(p, 1)): two servers, one caller, its cap lowered mid-lease. These held
// (REVIEW12); what did not is in test/rateLimits.test.ts.
const { db, server: a } = useTestServer();
const b = useServer(db);

async function whoami(url: string, token: string): Promise<{ status: number; retryAfter: string | null; text: string }> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: "{ whoami { tenant } }" }),
  });
  return { status: res.status, retryAfter: res.headers.get("retry-after"), text: await res.text() };
}

/** `rounds` rounds of 8 requests at once, alternating between the two servers. */
async function burst(token: string, rounds: number): Promise<Awaited<ReturnType<typeof whoami>>[]> {
  const out: Awaited<ReturnType<typeof whoami>>[] = [];
  for (let r = 0; r < rounds; r++) out.push(...(await Promise.all(Array.from({ length: 8 }, (_, i) => whoami((i % 2 ? a : b).url, token)))));
  return out;
}

const minuteHits = (who: string) =>
  db.admin.query("select coalesce(sum(hits), 0)::int as n from sextant_private.rate_buckets where bucket = $1 and window_start = date_trunc('minute', now(), 'UTC')", [`p:acme:${who}:minute`])
    .then((r) => r.rows[0].n as number);

test("a fast GraphQL caller at its cap on two servers: never more than the cap, every refusal HTTP 429 SX429 with Retry-After, and the count ends at what was admitted", async () => {
  await earlyInAMinute(40);
  const token = await createToken(db, "acme", "lease-gql");
  const results = await withMinuteCap(db, 30, () => burst(token, 10));
  const ok = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status !== 200);
  expect(ok.every((r) => r.text.includes('"tenant":"acme"'))).toBe(true);
  expect(ok.length).toBeLessThanOrEqual(30);
  expect(ok.length).toBeGreaterThan(0);
  for (const r of refused) {
    expect(r.status).toBe(429);
    expect(r.text).toContain("SX429");
    expect(r.text).toMatch(/Retry after \d+ seconds/);
    expect(r.retryAfter).toMatch(/^\d+$/);
  }
  // Leased calls left unused are given back (within about two seconds): counted is admitted.
  expect(await eventually(async () => (await minuteHits("lease-gql")) === ok.length, 5000)).toBe(true);
  const refusedEvents = await eventually(async () => {
    const { rows } = await db.admin.query("select count(*)::int as n from sextant.audit_events where principal = 'lease-gql' and outcome = 'refused' and error_code = 'SX429'");
    return rows[0].n === refused.length;
  }, 5000);
  expect(refusedEvents).toBe(true);
});

test("a cap lowered mid-lease: calls already leased (at most a lease, 64 per server) may still run for up to a second, then the new cap refuses every call", async () => {
  await earlyInAMinute(40);
  const token = await createToken(db, "acme", "lease-lowered");
  await withMinuteCap(db, 1000, async () => {
    expect((await burst(token, 5)).every((r) => r.status === 200)).toBe(true); // 40 calls: leases taken
    await db.admin.query("update sextant.tenants set rate_per_minute = 10 where slug = 'acme'");
    const right = await burst(token, 20);
    // The leases counted before the change: at most 64 calls per server, never a new lease.
    expect(right.filter((r) => r.status === 200).length).toBeLessThanOrEqual(2 * 64);
    await new Promise((r) => setTimeout(r, 1100)); // every lease is over
    const after = await burst(token, 2);
    expect(after.map((r) => r.status)).toEqual(Array(16).fill(429));
  });
});
