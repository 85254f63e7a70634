/**
 * The servers the peer bench compares, each behind an MCP SDK client, and how each does the
 * bench's ops with its own tools.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { freePort } from "../test/helpers/ports.ts";
import { sextantBin } from "./install.ts";

const here = path.dirname(new URL(import.meta.url).pathname);
const peers = path.join(here, "peers/node_modules");

export const OPS = ["point", "wide", "describe_film", "describe_wide", "list_tables"] as const;
export type Op = (typeof OPS)[number];
export const OP_TITLES: Record<Op, string> = {
  point: "point lookup via query",
  wide: "1,000 wide rows",
  describe_film: "describe_table (film)",
  describe_wide: "describe_table (40 cols, 2,000-table catalog)",
  list_tables: "list_tables (100 tables)",
};

export interface Fixture {
  url: string;
  pagila: string; // the schema Pagila is in
  token: string;
}

export function opSql(f: Fixture) {
  return {
    point: `select * from ${f.pagila}.film where film_id = 42`,
    wide: `select * from ${f.pagila}.rental order by rental_id limit 1000`,
  };
}

type Call = { tool: string; args: Record<string, unknown> };
export type Family = "floor" | "dbhub" | "server-postgres" | "sextant";

export interface Target {
  name: string;
  family: Family;
  transport: "http" | "stdio";
  ops: Record<Op, Call>;
  /** Starts the server (HTTP) and returns a connected client; HTTP targets may be connected many times. */
  connect(): Promise<Client>;
  /** The server process (for RSS). */
  pid(): number | undefined;
  stop(): Promise<void>;
}

// What server-postgres (query is its only tool) and the floor read for list and describe.
const LIST_SQL = (schema: string) => `select c.relname as table, obj_description(c.oid, 'pg_class') as comment
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = '${schema}' and c.relkind in ('r', 'p', 'v', 'm', 'f') order by 1 limit 100`;
const DESCRIBE_SQL = (schema: string, table: string) => `select a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
  a.attnotnull as not_null, pg_get_expr(d.adbin, d.adrelid) as default, col_description(a.attrelid, a.attnum) as comment
from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = '${schema}.${table}'::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum`;

function ops(f: Fixture, family: Family): Record<Op, Call> {
  const sql = opSql(f);
  const film = { schema: f.pagila, table: "film" };
  const wide = { schema: "catalog_01", table: "wide_snapshot" };
  switch (family) {
    case "floor":
      return {
        point: { tool: "query", args: { sql: sql.point } },
        wide: { tool: "query", args: { sql: sql.wide, max_rows: 1000 } },
        describe_film: { tool: "describe_table", args: film },
        describe_wide: { tool: "describe_table", args: wide },
        list_tables: { tool: "list_tables", args: { schema: "catalog_02" } },
      };
    case "sextant":
      return {
        point: { tool: "query", args: { sql: sql.point } },
        wide: { tool: "query", args: { sql: sql.wide, max_rows: 1000 } },
        describe_film: { tool: "describe_table", args: film },
        describe_wide: { tool: "describe_table", args: wide },
        list_tables: { tool: "list_tables", args: { schema: "catalog_02", max_results: 100 } },
      };
    case "dbhub":
      return {
        point: { tool: "execute_sql", args: { sql: sql.point } },
        wide: { tool: "execute_sql", args: { sql: sql.wide } },
        describe_film: { tool: "search_objects", args: { object_type: "column", ...film, detail_level: "summary", limit: 1000 } },
        describe_wide: { tool: "search_objects", args: { object_type: "column", ...wide, detail_level: "summary", limit: 1000 } },
        list_tables: { tool: "search_objects", args: { object_type: "table", schema: "catalog_02", detail_level: "names", limit: 100 } },
      };
    case "server-postgres":
      return {
        point: { tool: "query", args: { sql: sql.point } },
        wide: { tool: "query", args: { sql: sql.wide } },
        describe_film: { tool: "query", args: { sql: DESCRIBE_SQL(film.schema, film.table) } },
        describe_wide: { tool: "query", args: { sql: DESCRIBE_SQL(wide.schema, wide.table) } },
        list_tables: { tool: "query", args: { sql: LIST_SQL("catalog_02") } },
      };
  }
}

const baseEnv = () => ({ PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", GRAPHILE_ENV: "production" });

function stdioTarget(name: string, family: Family, f: Fixture, command: string, args: string[], env: Record<string, string>): Target {
  let transport: StdioClientTransport | undefined;
  return {
    name, family, transport: "stdio", ops: ops(f, family),
    async connect() {
      transport = new StdioClientTransport({ command, args, env: { ...baseEnv(), ...env }, stderr: "ignore" });
      const client = new Client({ name: "peer-bench", version: "1.0.0" });
      await client.connect(transport);
      return client;
    },
    pid: () => transport?.pid ?? undefined,
    async stop() {
      await transport?.close().catch(() => {});
    },
  };
}

async function waitForHttp(url: string, child: ChildProcess, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited (${child.exitCode})`);
    try {
      const r = await fetch(url, { method: "GET" });
      if (r.status < 500) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

function httpTarget(name: string, family: Family, f: Fixture, start: (port: number) => { child: ChildProcess; ready: string },
                    token?: string): Target {
  let child: ChildProcess | undefined;
  let url: URL | undefined;
  return {
    name, family, transport: "http", ops: ops(f, family),
    async connect() {
      if (!child) {
        const port = await freePort();
        const started = start(port);
        child = started.child;
        await waitForHttp(started.ready.replace("PORT", String(port)), child, 60_000);
        url = new URL(`http://127.0.0.1:${port}/mcp`);
      }
      const client = new Client({ name: "peer-bench", version: "1.0.0" });
      await client.connect(new StreamableHTTPClientTransport(url!, { requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : {} }));
      return client;
    },
    pid: () => child?.pid,
    async stop() {
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    },
  };
}

export function peersInstalled(): boolean {
  return fs.existsSync(path.join(peers, "@bytebase/dbhub/dist/index.js")) &&
    fs.existsSync(path.join(peers, "@modelcontextprotocol/server-postgres/dist/index.js"));
}

/** Every target, in a fixed order; `sextantHttp` is a running `sextant serve` (its ready time is measured apart). */
export function makeTargets(f: Fixture, sextantHttp: { port: number; child: ChildProcess }): Target[] {
  const node = process.execPath;
  const floor = path.join(here, "floor.ts");
  const dbhub = path.join(peers, "@bytebase/dbhub/dist/index.js");
  const dbhubToken = "bench-dbhub-token";
  const spawnQuiet = (args: string[]) => spawn(node, args, { env: { ...baseEnv() }, stdio: ["ignore", "ignore", "ignore"] });
  const sextantHttpTarget: Target = {
    ...httpTarget("sextant http", "sextant", f, () => ({ child: sextantHttp.child, ready: "" }), f.token),
    async connect() {
      const client = new Client({ name: "peer-bench", version: "1.0.0" });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${sextantHttp.port}/mcp`),
        { requestInit: { headers: { authorization: `Bearer ${f.token}` } } }));
      return client;
    },
    pid: () => sextantHttp.child.pid,
  };
  return [
    httpTarget("floor http", "floor", f, (port) => ({ child: spawnQuiet(["--import", "tsx", floor, "--dsn", f.url, "--http", String(port)]), ready: "http://127.0.0.1:PORT/" })),
    httpTarget("dbhub http", "dbhub", f, (port) => ({
      child: spawnQuiet([dbhub, "--transport", "http", "--host", "127.0.0.1", "--port", String(port), "--auth-token", dbhubToken, "--dsn", f.url]),
      ready: "http://127.0.0.1:PORT/healthz",
    }), dbhubToken),
    sextantHttpTarget,
    stdioTarget("floor stdio", "floor", f, node, ["--import", "tsx", floor, "--dsn", f.url, "--stdio"], {}),
    stdioTarget("dbhub stdio", "dbhub", f, node, [dbhub, "--transport", "stdio", "--dsn", f.url], {}),
    stdioTarget("server-postgres", "server-postgres", f, node, [path.join(peers, "@modelcontextprotocol/server-postgres/dist/index.js"), f.url], {}),
    stdioTarget("sextant stdio", "sextant", f, node, [sextantBin, "mcp", "--tenant", "bench", "--role", "analyst"],
      { DATABASE_URL: f.url, LOG_LEVEL: "warn" }),
  ];
}
