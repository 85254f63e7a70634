import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openEmbedded, type DatabaseHandle } from "../../src/db/embedded.ts";
import { startServe, type ServeProcess } from "../helpers/cli.ts";
import { connectHttp, postMcp } from "../helpers/mcpClient.ts";
import { freePort } from "../helpers/ports.ts";
import { startProxy, type Proxy } from "./proxy.ts";

// Three `sextant serve` processes on one PostgreSQL (its own embedded cluster: `serve` installs
// roles, which are cluster-wide), behind a round-robin proxy. MCP is stateless, so a client's
// calls may land on any of them; one is killed in the middle of a call.

interface Replica extends ServeProcess {
  dir: string;
}

let own: DatabaseHandle;
let ownDir: string;
let admin: pg.Client;
const replicas: Replica[] = [];
let proxy: Proxy;

async function startReplica(databaseUrl: string, extra: Record<string, string> = {}): Promise<Replica> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-replica-"));
  return Object.assign(await startServe({ DATABASE_URL: databaseUrl, SEXTANT_DATA_DIR: dir, ...extra }), { dir });
}

beforeAll(async () => {
  ownDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-replicas-db-"));
  fs.chmodSync(ownDir, 0o755);
  own = await openEmbedded({ dataDir: ownDir, port: await freePort(), dbName: "replicas" });
  // The first installs (migrations, demo tenant); the other two start on the installed database.
  replicas.push(await startReplica(own.adminUrl, { SEXTANT_DEMO: "1" }));
  replicas.push(...(await Promise.all([startReplica(own.adminUrl), startReplica(own.adminUrl)])));
  proxy = await startProxy(replicas.map((r) => r.url));
  admin = new pg.Client({ connectionString: own.adminUrl });
  await admin.connect();
}, 240_000);

afterAll(async () => {
  await proxy?.close();
  await admin?.end();
  await Promise.all(replicas.map((r) => r.stop()));
  await own?.close();
  for (const r of replicas) fs.rmSync(r.dir, { recursive: true, force: true });
  fs.rmSync(ownDir, { recursive: true, force: true });
}, 60_000);

const token = async (name: string) =>
  (await admin.query("select sextant_private.create_api_token('demo', $1, 'analyst', null) as token", [name])).rows[0].token as string;

async function connectModern(url: string, bearer: string) {
  const client = new ClientV2({ name: "replica-test", version: "1" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await client.connect(new TransportV2(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${bearer}` } } }));
  return client;
}

const audited = async (principal: string) =>
  (await admin.query("select count(*)::int as n from sextant.audit_events where principal = $1", [principal])).rows[0].n as number;

async function until(check: () => Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

describe("three sextant serve processes behind a round-robin proxy", () => {
  test("a client's calls alternate between replicas, 2026 and 2025 clients alike; every call is audited once", async () => {
    const bearer = await token("replica-agent");
    const modern = await connectModern(proxy.url, bearer);
    const legacy = (await connectHttp(proxy.url, bearer)).client;
    const from = proxy.served.length;
    for (let i = 0; i < 15; i++) {
      for (const client of [modern, legacy]) {
        const r = await client.callTool({ name: i % 2 ? "list_schemas" : "whoami", arguments: {} });
        expect(r.isError, JSON.stringify(r.content)).not.toBe(true);
      }
    }
    const served = proxy.served.slice(from);
    for (const i of [0, 1, 2]) expect(served.filter((s) => s === i).length, `replica ${i}`).toBeGreaterThanOrEqual(8);
    expect(await until(async () => (await audited("replica-agent")) === 30)).toBe(true);
    await modern.close();
    await legacy.close();
  });

  test("a principal's per-minute limit holds across replicas (counters in PostgreSQL)", async () => {
    const before = (await admin.query("select rate_per_minute from sextant.tenants where slug = 'demo'")).rows[0].rate_per_minute;
    await admin.query("update sextant.tenants set rate_per_minute = 15 where slug = 'demo'");
    // Stay inside one fixed minute window.
    if (new Date().getSeconds() > 45) await new Promise((r) => setTimeout(r, (61 - new Date().getSeconds()) * 1000));
    // Three clients of one principal call at once, so the replicas admit at the same moments.
    const bearer = await token("replica-limited");
    const clients = await Promise.all([0, 1, 2].map(() => connectModern(proxy.url, bearer)));
    const from = proxy.served.length;
    let ok = 0;
    let refused = 0;
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < 9; i++) {
        const r = (await client.callTool({ name: "whoami", arguments: {} })) as { isError?: boolean; content: { text: string }[] };
        if (!r.isError) ok++;
        else if (/SX429/.test(r.content[0]!.text)) refused++;
      }
    }));
    const served = proxy.served.slice(from);
    await admin.query("update sextant.tenants set rate_per_minute = $1 where slug = 'demo'", [before]);
    console.log(`replicas: rate limit 15/minute, 27 concurrent calls over 3 replicas (${[0, 1, 2].map((i) => served.filter((s) => s === i).length).join("/")}): ${ok} allowed, ${refused} refused (SX429)`);
    // Each replica alone saw 9 calls, under 15: only shared counters refuse any. They are counted
    // at admission in one statement (sextant_private.admit_calls), so exactly the limit passes.
    for (const i of [0, 1, 2]) expect(served.filter((s) => s === i).length, `replica ${i}`).toBeGreaterThanOrEqual(5);
    expect(ok).toBeGreaterThanOrEqual(15);
    expect(ok).toBeLessThanOrEqual(17);
    expect(ok).toBe(15);
    expect(refused).toBe(27 - ok);
    const counted = (await admin.query("select coalesce(sum(hits), 0)::int as n from sextant_private.rate_buckets where bucket = 'p:demo:replica-limited:minute'")).rows[0].n;
    expect(counted).toBe(15); // refused calls count nothing
    await Promise.all(clients.map((c) => c.close()));
  }, 120_000);

  test("a revoked token is refused on every replica within milliseconds, though each had it cached", async () => {
    const bearer = await token("replica-revokee");
    const post = (url: string) => postMcp(`${url}/mcp`, bearer, { jsonrpc: "2.0", id: 1, method: "ping" }).then((r) => r.status);
    for (const r of replicas) {
      expect(await post(r.url)).not.toBe(401);
      expect(await post(r.url)).not.toBe(401); // now from each replica's credential cache
    }
    await admin.query("select sextant_private.revoke_api_token($1)", [bearer.slice(4, 12)]);
    const revokedAt = Date.now();
    const refusedAfter = await Promise.all(replicas.map(async (r) => {
      while ((await post(r.url)) !== 401) if (Date.now() - revokedAt > 2000) return Infinity;
      return Date.now() - revokedAt;
    }));
    console.log(`replicas: a revoked token refused after ${refusedAfter.join(" / ")} ms`);
    for (const ms of refusedAfter) expect(ms).toBeLessThan(500);
  });

  test("one replica killed in the middle of a call: only that call fails, and says so; the client carries on", async () => {
    const bearer = await token("replica-survivor");
    const client = await connectModern(proxy.url, bearer);
    const errors: string[] = [];
    let calls = 0;
    for (let i = 0; i < 6; i++, calls++) await client.callTool({ name: "whoami", arguments: {} });
    // A slow call (a few seconds of counting; pg_sleep is refused); the proxy's last pick serves it.
    await admin.query("update sextant.tenants set max_query_cost = 1e12 where slug = 'demo'");
    const slow = client.callTool({ name: "query", arguments: { sql: "select count(*) from generate_series(1, 8000) a, generate_series(1, 8000) b" } }).then(
      (r) => (r.isError ? errors.push(String((r.content as { text: string }[])[0]?.text)) : null),
      (e: Error) => errors.push(e.message),
    );
    calls++;
    await until(async () => proxy.routed.length > 0 && proxy.routed.at(-1)! >= 0, 2000);
    await new Promise((r) => setTimeout(r, 500));
    const victim = replicas[proxy.routed.at(-1)!]!;
    const killedAt = performance.now();
    victim.child.kill("SIGKILL");
    await slow;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/terminated|socket|closed|fetch failed|502|ECONNRESET|aborted|other side closed/i);
    let failoverMs = -1;
    for (let i = 0; i < 24; i++, calls++) {
      try {
        const r = await client.callTool({ name: i % 2 ? "list_schemas" : "whoami", arguments: {} });
        if (r.isError) errors.push(String((r.content as { text: string }[])[0]?.text));
        else if (failoverMs < 0) failoverMs = Math.round(performance.now() - killedAt);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    expect(errors).toHaveLength(1);
    // Figures for the report.
    console.log(`replicas: ${calls} calls through the proxy after 6 warm-up, ${errors.length} error (the in-flight call: ${errors[0]}), first success ${failoverMs} ms after the kill`);
    expect(failoverMs).toBeGreaterThanOrEqual(0);
    expect(failoverMs).toBeLessThan(5000);
    await client.close();
  }, 60_000);
});
