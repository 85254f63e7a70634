import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { WorkerHandle } from "../../src/worker/index.ts";
import { isPrivateAddress, normalizeAddress } from "../../src/worker/hostGuard.ts";
import { createToken } from "../helpers/db.ts";
import { startHostilePgServer, type HostilePgServer } from "../helpers/pgWireServer.ts";
import { useServer, useTestDatabase } from "../helpers/setup.ts";
import { startTestWorker } from "../helpers/worker.ts";
import { gql as gqlRequest } from "../helpers/graphql.ts";

// Pipeline sources attacked by a tenant admin through the public door (GraphQL createPipeline +
// runMaterialization), against servers the test starts on loopback: a hostile PostgreSQL
// wire-protocol server, and HTTP services that count what reaches them.

const db = useTestDatabase();
let worker: WorkerHandle;
let adminToken: string;
let viewerToken: string;
/** The worker's allow list (mutated per test; the worker reads it on every run). */
const allow: string[] = [];
const marker = path.join(os.tmpdir(), `sextant-sources-pwned-${process.pid}`);

/** An HTTP service on loopback that records every request (path and headers). */
async function startRecorder(body = JSON.stringify([{ id: 1, name: "a" }]), contentType = "application/json") {
  const requests: { url: string; headers: http.IncomingHttpHeaders }[] = [];
  const srv = http.createServer((req, res) => {
    requests.push({ url: req.url ?? "", headers: req.headers });
    res.writeHead(200, { "content-type": contentType }).end(body);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  return { port, url: `http://127.0.0.1:${port}`, requests, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

async function gql(token: string, query: string, variables: Record<string, unknown> = {}) {
  return (await gqlRequest(server.url, token, query, variables)).body;
}

async function createPipeline(definition: Record<string, unknown>) {
  return gql(adminToken, "mutation($d: JSON!) { createPipeline(input: { definition: $d }) { result { name } } }", { d: definition });
}

async function setSecret(pipeline: string, name: string, value: string) {
  const r = await gql(adminToken, "mutation($p: String!, $n: String!, $v: String!) { setPipelineSecret(input: { pipeline: $p, name: $n, value: $v }) { result } }",
    { p: pipeline, n: name, v: value });
  expect(r.errors).toBeUndefined();
}

/** Runs a pipeline through GraphQL and waits for its end; returns the run row (read as admin). */
async function run(pipeline: string): Promise<{ status: string; error: string | null }> {
  const r = await gql(adminToken, "mutation($p: String!) { runMaterialization(input: { pipeline: $p }) { result { rowId } } }", { p: pipeline });
  expect(r.errors).toBeUndefined();
  const id = r.data.runMaterialization.result.rowId;
  const until = Date.now() + 30000;
  for (;;) {
    const { rows } = await db.admin.query("select status, error from sextant.materialization_runs where id = $1", [id]);
    if (["succeeded", "failed", "cancelled"].includes(rows[0].status)) return rows[0];
    if (Date.now() > until) throw new Error(`run ${id} is still ${rows[0].status}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Sextant is still whole: the server answers, another tenant's data and the audit are intact. */
async function healthy() {
  expect((await fetch(`${server.url}/health`)).status).toBe(200);
  const { rows } = await db.admin.query(`select (select count(*) from globex_ops.shipments)::int as shipments,
    (select count(*) from pg_class where relname = 'sx_pwned')::int as pwned,
    (select count(*) from pg_roles where rolname = 'sx_pwned')::int as roles`);
  expect(rows[0]).toEqual({ shipments: 20, pwned: 0, roles: 0 });
  expect(fs.existsSync(marker)).toBe(false);
}

function setAllow(...entries: string[]) {
  allow.length = 0;
  allow.push(...entries);
}

const PG_PORT = () => Number(new URL(db.adminUrl).port);

beforeAll(async () => {
  // These tests make hundreds of GraphQL calls a minute as one admin: not what is under test here.
  await db.admin.query("update sextant.tenants set rate_per_minute = 100000, rate_per_hour = 100000 where slug = 'acme'");
});
const server = useServer(db);
beforeAll(async () => {
  adminToken = await createToken(db, "acme", "mallory-admin", "admin");
  viewerToken = await createToken(db, "acme", "victor-viewer", "viewer");
  const c = await db.admin.connect();
  try {
    await c.query("begin");
    await c.query("set local role sextant_t_acme__admin");
    await c.query("select sextant.provision_schema('src')");
    await c.query("commit");
  } finally {
    c.release();
  }
  worker = await startTestWorker(db, { allowHosts: allow });
});
afterAll(async () => {
  await worker?.stop();
  fs.rmSync(marker, { force: true });
});

describe("a hostile PostgreSQL server (wire protocol on loopback)", () => {
  const INJECTION = `int4); create table public.sx_pwned as select current_user as who; copy (select 1) to program 'touch ${marker}'; create table sx_x (a int4`;
  let hostile: HostilePgServer;
  beforeAll(async () => {
    hostile = await startHostilePgServer({
      columns: [
        { name: "id", typeOid: 23 },
        { name: `x" int); create table public.sx_pwned (a int); --`, typeOid: 25 },
        // An OID no built-in type has: only the server's catalog could name it.
        { name: "weird", typeOid: 987654 },
      ],
      rows: ["1\thello\tint4); select 1", "2\tworld\t\\N"],
      typeName: INJECTION,
    });
  });
  afterAll(() => hostile?.close());

  test("its type names and column names are never pasted into SQL: no command runs, current_user never becomes postgres", async () => {
    setAllow(`127.0.0.1:${hostile.port}`);
    const def = { name: "hostile_pg", target_schema: "t_acme__src", source: { name: "remote", kind: "postgres", connection_string: { secret: "dsn" } },
      entities: [{ name: "loot", query: "select * from anything" }], models: [] };
    expect((await createPipeline(def)).errors).toBeUndefined();
    await setSecret("hostile_pg", "dsn", `postgres://hostile:pw@127.0.0.1:${hostile.port}/hostile`);
    const r = await run("hostile_pg");
    expect(r).toEqual({ status: "succeeded", error: null });
    const cols = (await db.admin.query(
      "select column_name, data_type from information_schema.columns where table_schema = 't_acme__src' and table_name = 'loot' order by ordinal_position")).rows;
    // Names made identifiers (lower case, [a-z0-9_]); the unknown OID is text; the built-in one is
    // mapped by OID from Sextant's own list, never from the server's pg_type answer.
    expect(cols.map((c) => `${c.column_name}:${c.data_type}`)).toEqual(["id:integer", "x_int_create_table_public_sx_pwned_a_int:text", "weird:text"]);
    expect((await db.admin.query("select id, weird from t_acme__src.loot order by id")).rows).toEqual([{ id: 1, weird: "int4); select 1" }, { id: 2, weird: null }]);
    expect(hostile.queries.some((q) => /pg_type/.test(q))).toBe(false);
    await healthy();
  });

  test("the operator's own PGPASSWORD (or ~/.pgpass) is never sent to a source without a password", async () => {
    setAllow(`127.0.0.1:${hostile.port}`);
    const saved = process.env.PGPASSWORD;
    process.env.PGPASSWORD = "operator-own-password";
    try {
      const def = { name: "nopass", target_schema: "t_acme__src", source: { name: "remote", kind: "postgres", connection_string: { secret: "dsn" } },
        entities: [{ name: "loot2", query: "select 1" }], models: [] };
      expect((await createPipeline(def)).errors).toBeUndefined();
      await setSecret("nopass", "dsn", `postgres://hostile@127.0.0.1:${hostile.port}/hostile`);
      const before = hostile.connections.length;
      await run("nopass");
      const seen = hostile.connections.slice(before);
      expect(seen.length).toBeGreaterThan(0);
      for (const c of seen) expect(c.password).toBe("");
    } finally {
      if (saved === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = saved;
    }
    await healthy();
  });

  test.each([
    ["?host= overriding the checked host (Sextant's own database)", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?host=127.0.0.1&port=${PG_PORT()}`, /may not set host/],
    ["hostaddr", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?hostaddr=127.0.0.1`, /may not set hostaddr/],
    ["sslrootcert=/dev/zero (the server reading a local file)", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?sslmode=verify-full&sslrootcert=/dev/zero`, /may not set sslrootcert/],
    ["sslcert", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?sslcert=/etc/passwd`, /may not set sslcert/],
    ["sslkey", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?sslkey=/etc/passwd`, /may not set sslkey/],
    ["passfile", (p: number) => `postgres://u@127.0.0.1:${p}/db?passfile=/etc/passwd`, /may not set passfile/],
    ["service", (p: number) => `postgres://u@127.0.0.1:${p}/db?service=sextant`, /may not set service/],
    ["options (a role for the session)", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?options=-c%20role%3Dpostgres`, /may not set options/],
    ["user in the query string", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?user=postgres`, /may not set user/],
    ["an unknown sslmode", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?sslmode=allow-all`, /sslmode allow-all is not one of/],
    ["sslmode twice", (p: number) => `postgres://u:pw@127.0.0.1:${p}/db?sslmode=require&sslmode=disable`, /sslmode twice/],
    ["several hosts", (p: number) => `postgres://u:pw@127.0.0.1:${p},127.0.0.1:${PG_PORT()}/db`, /one host name or address|not a URL/],
    ["libpq key=value form", (p: number) => `host=127.0.0.1 port=${p} dbname=db sslrootcert=/dev/zero`, /not a URL/],
    ["a Unix socket directory", () => `postgres://u:pw@%2Fvar%2Frun%2Fpostgresql/db`, /one host name or address/],
  ])("a connection string with %s is refused before anything connects", async (_, dsn, reason) => {
    setAllow(`127.0.0.1:${hostile.port}`);
    const name = `bad_${Math.random().toString(36).slice(2, 8)}`;
    const def = { name, target_schema: "t_acme__src", source: { name: "remote", kind: "postgres", connection_string: { secret: "dsn" } },
      entities: [{ name: "loot", query: "select 1" }], models: [] };
    expect((await createPipeline(def)).errors).toBeUndefined();
    await setSecret(name, "dsn", dsn(hostile.port));
    const before = hostile.connections.length;
    const ownBefore = (await db.admin.query("select count(*)::int as n from pg_stat_activity where usename = 'u'")).rows[0].n;
    const r = await run(name);
    expect(r.status).toBe("failed");
    expect(r.error).toMatch(reason);
    expect(r.error).not.toMatch(/pw@/);
    expect(hostile.connections.length).toBe(before);
    expect((await db.admin.query("select count(*)::int as n from pg_stat_activity where usename = 'u'")).rows[0].n).toBe(ownBefore);
    await healthy();
  });

  test("an allow-listed host is allowed on its listed port only: not on Sextant's own database port", async () => {
    setAllow(`127.0.0.1:${hostile.port}`);
    const def = { name: "own_db", target_schema: "t_acme__src", source: { name: "remote", kind: "postgres", connection_string: { secret: "dsn" } },
      entities: [{ name: "loot", query: "select 1" }], models: [] };
    expect((await createPipeline(def)).errors).toBeUndefined();
    await setSecret("own_db", "dsn", db.adminUrl);
    const r = await run("own_db");
    expect(r.status).toBe("failed");
    expect(r.error).toMatch(/private or loopback address/);
    // A bare host allows the scheme's default port only (5432 here), not this one either.
    setAllow("127.0.0.1");
    expect((await run("own_db")).error).toMatch(/private or loopback address/);
    await healthy();
  });
});

describe("addresses of HTTP and CSV sources", () => {
  let svc: Awaited<ReturnType<typeof startRecorder>>;
  beforeAll(async () => {
    svc = await startRecorder();
  });
  afterAll(() => svc?.close());

  const FORMS = [
    "[::ffff:127.0.0.1]", "[0:0:0:0:0:ffff:7f00:1]", "[::ffff:7f00:1]", "[0000:0000:0000:0000:0000:FFFF:127.0.0.1]", "[::FFFF:7F00:0001]",
    "[::ffff:0:127.0.0.1]", "[::127.0.0.1]", "[64:ff9b::127.0.0.1]", "[2002:7f00:1::]", "[::1]", "[0:0:0:0:0:0:0:1]", "[::]",
    "127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1", "0.0.0.0", "localhost", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "[fe80::1]", "[fd00::1]",
  ];

  test.each(FORMS)("http source at %s is refused like 127.0.0.1 and nothing reaches the service", async (host) => {
    setAllow(); // nothing allowed
    const name = `h_${Math.random().toString(36).slice(2, 8)}`;
    const created = await createPipeline({ name, target_schema: "t_acme__src", source: { name: "api", kind: "http", base_url: `http://${host}:${svc.port}/` },
      entities: [{ name: "items", path: "items" }], models: [] });
    expect(created.errors).toBeUndefined();
    const before = svc.requests.length;
    const r = await run(name);
    expect(r.status).toBe("failed");
    expect(r.error).toMatch(/private or loopback address|does not resolve/);
    expect(svc.requests.length).toBe(before);
    await healthy();
  });

  test.each(["[::ffff:127.0.0.1]", "[0:0:0:0:0:ffff:7f00:1]", "2130706433"])("csv source at %s is refused like 127.0.0.1", async (host) => {
    setAllow();
    const name = `c_${Math.random().toString(36).slice(2, 8)}`;
    expect((await createPipeline({ name, target_schema: "t_acme__src", source: { name: "files", kind: "csv", base_url: `http://${host}:${svc.port}/` },
      entities: [{ name: "rows", url: "data.csv" }], models: [] })).errors).toBeUndefined();
    const before = svc.requests.length;
    const r = await run(name);
    expect(r.status).toBe("failed");
    expect(r.error).toMatch(/private or loopback address/);
    expect(svc.requests.length).toBe(before);
    await healthy();
  });

  test("every textual form of a mapped loopback address normalises to 127.0.0.1; public addresses stay allowed", () => {
    for (const f of ["::ffff:127.0.0.1", "0:0:0:0:0:ffff:7f00:1", "::ffff:7f00:1", "::FFFF:7F00:0001", "[::ffff:127.0.0.1]"]) expect(normalizeAddress(f)).toBe("127.0.0.1");
    for (const a of ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34", "8.8.8.8"]) expect(isPrivateAddress(a)).toBe(false);
  });

  test("an allow-listed host:port is reached (also written as mapped IPv6); the same host on another port is not", async () => {
    setAllow(`127.0.0.1:${svc.port}`);
    const ok = `ok_${Math.random().toString(36).slice(2, 8)}`;
    expect((await createPipeline({ name: ok, target_schema: "t_acme__src", source: { name: "api", kind: "http", base_url: `http://[::ffff:127.0.0.1]:${svc.port}/` },
      entities: [{ name: "items_ok", path: "items" }], models: [] })).errors).toBeUndefined();
    expect(await run(ok)).toEqual({ status: "succeeded", error: null });
    // Allowed by name and port: the name is resolved once and that address dialled.
    setAllow(`localhost:${svc.port}`);
    const byName = `nm_${Math.random().toString(36).slice(2, 8)}`;
    expect((await createPipeline({ name: byName, target_schema: "t_acme__src", source: { name: "api", kind: "http", base_url: `http://localhost:${svc.port}/` },
      entities: [{ name: "items_nm", path: "items" }], models: [] })).errors).toBeUndefined();
    expect(await run(byName)).toEqual({ status: "succeeded", error: null });
    expect(svc.requests.at(-1)!.headers.host).toBe(`localhost:${svc.port}`);
    setAllow(`127.0.0.1:${svc.port}`);
    const other = await startRecorder();
    try {
      const no = `no_${Math.random().toString(36).slice(2, 8)}`;
      expect((await createPipeline({ name: no, target_schema: "t_acme__src", source: { name: "api", kind: "http", base_url: `${other.url}/` },
        entities: [{ name: "items_no", path: "items" }], models: [] })).errors).toBeUndefined();
      const r = await run(no);
      expect(r.error).toMatch(/private or loopback address/);
      expect(other.requests.length).toBe(0);
    } finally {
      await other.close();
    }
    await healthy();
  });
});

describe("names a source chooses", () => {
  const HOSTILE = [`a"; create table public.sx_pwned (a int); --`, "b) ; create role sx_pwned superuser; --", "Ünï cødé", "", "1st", "_raw"];

  test("JSON keys become quoted identifiers, never SQL", async () => {
    const records = [Object.fromEntries(HOSTILE.map((k, i) => [k, i])), { [HOSTILE[0]!]: "text now", "c\" int": { nested: true } }];
    const svc = await startRecorder(JSON.stringify(records));
    try {
      setAllow(`127.0.0.1:${svc.port}`);
      expect((await createPipeline({ name: "keys", target_schema: "t_acme__src", source: { name: "api", kind: "http", base_url: `${svc.url}/` },
        entities: [{ name: "hostile_keys", path: "x" }], models: [] })).errors).toBeUndefined();
      expect(await run("keys")).toEqual({ status: "succeeded", error: null });
      const cols = (await db.admin.query(
        "select column_name from information_schema.columns where table_schema = 't_acme__src' and table_name = 'hostile_keys' order by ordinal_position")).rows;
      expect(cols.map((c) => c.column_name)).toEqual(["a_create_table_public_sx_pwned_a_int", "b_create_role_sx_pwned_superuser", "n_c_d",
        "column", "c_1st", "raw", "c_int", "_raw"]);
    } finally {
      await svc.close();
    }
    await healthy();
  });

  test("CSV headers become quoted identifiers, never SQL", async () => {
    const csv = `"${HOSTILE[0]!.replace(/"/g, '""')}",${HOSTILE[1]},x\n1,2,3\n`;
    const svc = await startRecorder(csv, "text/csv");
    try {
      setAllow(`127.0.0.1:${svc.port}`);
      expect((await createPipeline({ name: "headers", target_schema: "t_acme__src", source: { name: "files", kind: "csv", base_url: `${svc.url}/` },
        entities: [{ name: "hostile_headers", url: "h.csv" }], models: [] })).errors).toBeUndefined();
      expect(await run("headers")).toEqual({ status: "succeeded", error: null });
      const cols = (await db.admin.query(
        "select column_name from information_schema.columns where table_schema = 't_acme__src' and table_name = 'hostile_headers' order by ordinal_position")).rows;
      expect(cols.map((c) => c.column_name)).toEqual(["a_create_table_public_sx_pwned_a_int", "b_create_role_sx_pwned_superuser", "x"]);
    } finally {
      await svc.close();
    }
    await healthy();
  });

  test("a secret in a request parameter is not shown in the run's error", async () => {
    const svc = http.createServer((_, res) => res.writeHead(404).end());
    await new Promise<void>((r) => svc.listen(0, "127.0.0.1", r));
    const port = (svc.address() as net.AddressInfo).port;
    try {
      setAllow(`127.0.0.1:${port}`);
      expect((await createPipeline({ name: "param_secret", target_schema: "t_acme__src", source: { name: "api", kind: "http", base_url: `http://127.0.0.1:${port}/` },
        entities: [{ name: "ps", path: "x", params: { api_key: { secret: "key" } } }], models: [] })).errors).toBeUndefined();
      await setSecret("param_secret", "key", "very-secret-api-key");
      const r = await gql(adminToken, "mutation { runMaterialization(input: { pipeline: \"param_secret\" }) { result { rowId } } }");
      const id = r.data.runMaterialization.result.rowId;
      const until = Date.now() + 30000;
      let seen: Awaited<ReturnType<typeof gql>>;
      do {
        await new Promise((res) => setTimeout(res, 100));
        seen = await gql(viewerToken, "query($id: BigInt!) { getMaterializationStatus(runId: $id) { nodes { status error } } }", { id: String(id) });
        expect(seen.errors).toBeUndefined();
      } while (seen.data.getMaterializationStatus.nodes[0].status !== "failed" && Date.now() < until);
      expect(seen.data.getMaterializationStatus.nodes[0].error).toMatch(/GET \/x\?api_key=… answered 404/);
      expect(JSON.stringify(seen)).not.toContain("very-secret-api-key");
    } finally {
      await new Promise<void>((r) => svc.close(() => r()));
    }
    await healthy();
  });
});

describe("bounds of a source", () => {
  test.each([
    ["a page of a terabyte held in memory", { max_page_bytes: 1e12 }],
    ["a million retries", { max_retries: 1000000 }],
    ["a request that may take a day", { timeout_ms: 86400000 }],
    ["a rate that never sends", { requests_per_second: 0 }],
    ["a limit that is not a number", { max_page_bytes: "1e12" }],
  ])("%s is refused when the pipeline is written", async (_, knobs) => {
    const r = await createPipeline({ name: "knobs", target_schema: "t_acme__src",
      source: { name: "api", kind: "http", base_url: "https://api.example.com/", ...knobs }, entities: [{ name: "k", path: "k" }], models: [] });
    expect(r.errors?.[0]?.message).toMatch(/sets a source limit out of bounds/);
    expect((await db.admin.query("select count(*)::int as n from sextant.pipelines where name = 'knobs'")).rows[0].n).toBe(0);
    await healthy();
  });
});

describe("secrets of a source", () => {
  test("a connection string or URL with an inline password is refused and never shown to viewers", async () => {
    const before = (await db.admin.query("select count(*)::int as n from sextant.pipelines")).rows[0].n;
    for (const source of [
      { name: "remote", kind: "postgres", connection_string: "postgres://reader:hunter2-secret@db.example.com:5432/shop" },
      { name: "remote", kind: "postgres", connection_string: "postgres://db.example.com/shop?user=reader&password=hunter2-secret" },
      { name: "api", kind: "http", base_url: "https://user:hunter2-secret@api.example.com/" },
      { name: "api", kind: "http", base_url: "https://api.example.com/", headers: { Authorization: "Bearer hunter2-secret" } },
      { name: "api", kind: "csv", base_url: "https://api.example.com/", headers: { "X-Api-Key": "hunter2-secret" } },
    ]) {
      const r = await createPipeline({ name: "inline_pw", target_schema: "t_acme__src", source, entities: [{ name: "e", query: "select 1" }], models: [] });
      expect(r.errors?.[0]?.message).toMatch(/password inside a URL or connection string|literal value in a credential header/);
      expect(JSON.stringify(r)).not.toContain("hunter2-secret");
    }
    expect((await db.admin.query("select count(*)::int as n from sextant.pipelines")).rows[0].n).toBe(before);
    const listed = await gql(viewerToken, "{ allPipelines { nodes { name source } } }");
    expect(JSON.stringify(listed)).not.toContain("hunter2-secret");
    await healthy();
  });

  test("re-pointing a pipeline at another origin drops its stored secrets: the secret header never reaches the new host", async () => {
    const a = await startRecorder();
    const b = await startRecorder();
    try {
      setAllow(`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`);
      const def = (base: string) => ({ name: "repoint", target_schema: "t_acme__src",
        source: { name: "api", kind: "http", base_url: base, headers: { authorization: { secret: "token" } } },
        entities: [{ name: "items_rp", path: "items" }], models: [] });
      expect((await createPipeline(def(`${a.url}/`))).errors).toBeUndefined();
      await setSecret("repoint", "token", "Bearer only-for-a");
      expect(await run("repoint")).toEqual({ status: "succeeded", error: null });
      expect(a.requests.at(-1)!.headers.authorization).toBe("Bearer only-for-a");

      expect((await createPipeline(def(`${b.url}/`))).errors).toBeUndefined();
      expect((await db.admin.query("select count(*)::int as n from sextant_private.pipeline_secrets s join sextant.pipelines p on p.id = s.pipeline_id where p.name = 'repoint'")).rows[0].n).toBe(0);
      const r = await run("repoint");
      expect(r.status).toBe("failed");
      expect(r.error).toMatch(/secret "token", which is not stored/);
      expect(b.requests.some((q) => q.headers.authorization?.includes("only-for-a"))).toBe(false);

      // Same origin, other path: the secret stays.
      expect((await createPipeline(def(`${b.url}/v2/`))).errors).toBeUndefined();
      await setSecret("repoint", "token", "Bearer for-b");
      expect((await createPipeline({ ...def(`${b.url}/v3/`) })).errors).toBeUndefined();
      expect(await run("repoint")).toEqual({ status: "succeeded", error: null });
      expect(b.requests.at(-1)!.headers.authorization).toBe("Bearer for-b");

      // An entity path that is a whole URL elsewhere does not take the headers along.
      const leak = def(`${b.url}/`);
      leak.entities = [{ name: "items_rp", path: `${a.url}/steal` }];
      expect((await createPipeline(leak)).errors).toBeUndefined();
      const before = a.requests.length;
      await setSecret("repoint", "token", "Bearer for-b");
      const r2 = await run("repoint");
      expect(r2.status).toBe("failed");
      expect(r2.error).toMatch(/leaves the source's origin/);
      expect(a.requests.length).toBe(before);
    } finally {
      await a.close();
      await b.close();
    }
    await healthy();
  });

  test("a CSV entity URL on another origin does not receive the source's headers", async () => {
    const a = await startRecorder("id\n1\n", "text/csv");
    const b = await startRecorder("id\n1\n", "text/csv");
    try {
      setAllow(`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`);
      expect((await createPipeline({ name: "csv_leak", target_schema: "t_acme__src",
        source: { name: "files", kind: "csv", base_url: `${a.url}/`, headers: { authorization: { secret: "token" } } },
        entities: [{ name: "rows_leak", url: `${b.url}/data.csv` }], models: [] })).errors?.[0]?.message).toBeUndefined();
      await setSecret("csv_leak", "token", "Bearer csv-secret");
      const r = await run("csv_leak");
      expect(r.status).toBe("failed");
      expect(r.error).toMatch(/not on the source's base_url origin/);
      expect(b.requests.length).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
    await healthy();
  });
});
