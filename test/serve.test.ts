import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openEmbedded, type DatabaseHandle } from "../src/db/embedded.ts";
import { runCli, startServe, type ServeProcess } from "./helpers/cli.ts";
import { callOk, connectHttp } from "./helpers/mcpClient.ts";
import { freePort } from "./helpers/ports.ts";

// The README's promise, end to end: `sextant serve` on a fresh data directory starts the
// embedded PostgreSQL, migrates, loads the demo tenant and prints a working demo token.
let dataDir: string;
let env: Record<string, string>;
let base: string;

/** `sextant serve` on the embedded PostgreSQL of `env` (the worker on, as by default). */
const serveEmbedded = () => startServe({ ...env, SEXTANT_WORKER: "1" }, { readyMs: 60_000 });

/** SIGTERM, then the exit code with whatever the server printed to stderr (for the report). */
async function stop(serve: ServeProcess): Promise<string> {
  await serve.stop();
  const code = await serve.exited;
  return `exit ${code}${code ? `: ${serve.stderr()}` : ""}`;
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-serve-"));
  fs.chmodSync(dataDir, 0o755);
  const port = await freePort();
  env = { SEXTANT_DATA_DIR: dataDir, PORT: String(port), SEXTANT_PG_PORT: String(await freePort()), LOG_LEVEL: "warn" };
  delete process.env.DATABASE_URL;
  base = `http://localhost:${port}`;
});
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe("sextant serve on the embedded PostgreSQL", () => {
  test("first start: demo tenant, URLs, a working token; CLI attaches; SIGTERM stops cleanly", async () => {
    const serve = await serveEmbedded();
    const stdout = serve.stdout();
    try {
      expect(stdout).toContain(`${base}/graphql`);
      expect(stdout).toContain(`${base}/mcp`);
      const token = /demo token \(tenant demo, analyst\): (sxt_\S+)/.exec(stdout)?.[1];
      expect(token).toBeDefined();
      expect(stdout).toContain(`claude mcp add --transport http sextant ${base}/mcp --header "Authorization: Bearer ${token}"`);

      expect((await fetch(`${base}/ready`)).status).toBe(200);
      // The GraphQL playground through the bundle (its page is loaded with import() at request time).
      const playground = await fetch(`${base}/graphiql`);
      expect(playground.status).toBe(200);
      expect(await playground.text()).toMatch(/<html/i);
      const { client } = await connectHttp(base, token!);
      expect(await callOk(client, "whoami")).toMatchObject({ tenant: "demo", access_level: "analyst" });
      const schemas = (await callOk(client, "list_schemas")).rows as { schema_name: string; table_count: number }[];
      expect(schemas).toEqual([expect.objectContaining({ schema_name: "shop", table_count: 5 })]);
      await client.close();

      // CLI commands find the running server instead of starting a second PostgreSQL.
      const list = await runCli(["tenant", "list"], env);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/demo\s+Demo shop/);
      const adminUrl = (await runCli(["db-url", "--admin"], env)).stdout.trim();
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      const { rows } = await admin.query(`
        select (select count(*) from shop.customers)::int as customers, (select count(*) from shop.orders)::int as orders,
               (select count(*) from shop.order_items)::int as items,
               (select count(*) from pg_description d join pg_class c on c.oid = d.objoid
                 where c.relnamespace = 'shop'::regnamespace)::int as comments`);
      await admin.end();
      expect(rows[0].customers).toBe(1500);
      expect(rows[0].orders).toBe(4000);
      expect(rows[0].items).toBeGreaterThan(4000);
      expect(rows[0].comments).toBeGreaterThan(15);
    } finally {
      expect(await stop(serve)).toBe("exit 0");
    }
    // PostgreSQL stopped with the server.
    expect(fs.existsSync(path.join(dataDir, "pg", "postmaster.pid"))).toBe(false);
  });

  test("a restart reuses the data and the demo token", async () => {
    const first = fs.readFileSync(path.join(dataDir, "demo-token"), "utf8").trim();
    const serve = await serveEmbedded();
    try {
      expect(serve.stdout()).toContain(first);
      expect((await fetch(`${base}/health`)).status).toBe(200);
    } finally {
      expect(await stop(serve)).toBe("exit 0");
    }
  });
});

// As root, PostgreSQL runs as the `postgres` OS user; a folder it cannot enter (mode 0700, as
// `mktemp -d` and home directories are) used to end in a bare EACCES stack from initdb.
test.runIf(process.getuid?.() === 0)("as root, a data directory the postgres user cannot enter is refused with one clear line", async () => {
  const closed = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-closed-"));
  fs.chmodSync(closed, 0o700);
  try {
    const r = await runCli(["serve"], { SEXTANT_DATA_DIR: path.join(closed, "data"), SEXTANT_PG_PORT: String(await freePort()), PORT: String(await freePort()) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the embedded PostgreSQL runs as the OS user postgres (Sextant runs as root here), which cannot enter ${closed}`);
    expect(r.stderr).toContain("chmod o+x");
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(fs.existsSync(path.join(closed, "data", "pg", "PG_VERSION"))).toBe(false);
  } finally {
    fs.rmSync(closed, { recursive: true, force: true });
  }
}, 60_000);

// The user's own database (DATABASE_URL) gets no demo data unless asked for. It runs on a
// PostgreSQL of its own: roles are cluster-wide, and installing into a second database of the
// shared test server would give the authenticator and the builders new passwords under the
// other test files' feet.
describe("sextant serve on DATABASE_URL", () => {
  let own: DatabaseHandle;
  let ownDir: string;
  beforeAll(async () => {
    ownDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-own-db-"));
    fs.chmodSync(ownDir, 0o755);
    own = await openEmbedded({ dataDir: ownDir, port: await freePort(), dbName: "users_own" });
  }, 120_000);
  afterAll(async () => {
    await own?.close();
    fs.rmSync(ownDir, { recursive: true, force: true });
  }, 60_000);

  test("installs without demo data, prints no demo token; SEXTANT_DEMO=1 asks for it", async () => {
    const url = own.adminUrl;
    const run = async (extra: Record<string, string>) => {
      const serve = await startServe({ DATABASE_URL: url, ...extra });
      await serve.stop();
      return serve.stdout();
    };
    const demoRows = async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const tenants = await c.query("select 1 from sextant.tenants where slug = 'demo'");
        const schema = await c.query("select 1 from pg_namespace where nspname = 'shop'");
        return tenants.rowCount! + schema.rowCount!;
      } finally {
        await c.end();
      }
    };
    const first = await run({});
    expect(first).not.toContain("demo token");
    expect(await demoRows()).toBe(0);
    const asked = await run({ SEXTANT_DEMO: "1" });
    expect(asked).toContain("demo token (tenant demo, analyst)");
    expect(await demoRows()).toBe(2);
  }, 240_000);
});
