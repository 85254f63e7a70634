/**
 * The floor of the peer bench: the thinnest honest MCP server over PostgreSQL. The same MCP
 * SDK as the peers and one node-postgres pool, plain pg_catalog SQL (not Sextant's), answers
 * as tab-separated text, no auth, no guard, no limits: what any MCP server over PostgreSQL
 * costs before it does anything of its own.
 *   node --import tsx bench/floor.ts --dsn URL --stdio
 *   node --import tsx bench/floor.ts --dsn URL --http PORT     (127.0.0.1, stateful sessions)
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import { parseArgs } from "node:util";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import pg from "pg";
import { z } from "zod";

const { values: a } = parseArgs({ options: { dsn: { type: "string" }, stdio: { type: "boolean" }, http: { type: "string" } } });
// Values as PostgreSQL's text: no type parsing.
const pool = new pg.Pool({ connectionString: a.dsn, max: 16, types: { getTypeParser: () => (v: string) => v } as never });

const cell = (v: unknown) => (v == null ? "" : String(v).replace(/[\t\n\r]/g, " "));
async function tsv(text: string, values?: unknown[], maxRows = 1000) {
  const res = await pool.query({ text, values, rowMode: "array" });
  const lines = [res.fields.map((f) => f.name).join("\t")];
  for (const row of (res.rows as unknown[][]).slice(0, maxRows)) lines.push(row.map(cell).join("\t"));
  return { content: [{ type: "text" as const, text: lines.join("\n") }] };
}

const LIST = `select c.relname as table, case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
  when 'p' then 'partitioned table' when 'f' then 'foreign table' else 'table' end as kind,
  c.reltuples::bigint as rows, obj_description(c.oid, 'pg_class') as comment
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f') order by 1 limit 100`;
const DESCRIBE = `select a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
  case when a.attnotnull then 'not null' else '' end as null, pg_get_expr(d.adbin, d.adrelid) as default,
  col_description(a.attrelid, a.attnum) as comment
from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = (select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2)
  and a.attnum > 0 and not a.attisdropped
order by a.attnum`;

function makeServer(): McpServer {
  const s = new McpServer({ name: "bench-floor", version: "1.0.0" });
  s.registerTool("query", { description: "Run SQL; tab-separated rows", inputSchema: { sql: z.string(), max_rows: z.number().int().optional() } },
    ({ sql, max_rows }) => tsv(sql, undefined, max_rows ?? 1000));
  s.registerTool("list_tables", { description: "Tables of a schema", inputSchema: { schema: z.string() } },
    ({ schema }) => tsv(LIST, [schema]));
  s.registerTool("describe_table", { description: "Columns of a table", inputSchema: { schema: z.string(), table: z.string() } },
    ({ schema, table }) => tsv(DESCRIBE, [schema, table]));
  return s;
}

if (a.http) {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const server = http.createServer(async (req, res) => {
    try {
      let body: unknown;
      if (req.method === "POST") {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      }
      const sid = req.headers["mcp-session-id"] as string | undefined;
      let transport = sid ? sessions.get(sid) : undefined;
      if (!transport) {
        if (req.method !== "POST" || !isInitializeRequest(body)) return void res.writeHead(400).end();
        const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: randomUUID,
          enableJsonResponse: true,
          onsessioninitialized: (id) => void sessions.set(id, t),
        });
        t.onclose = () => void (t.sessionId && sessions.delete(t.sessionId));
        transport = t;
        await makeServer().connect(t);
      }
      await transport.handleRequest(req, res, body);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500).end(String((e as Error).message));
    }
  });
  server.listen(Number(a.http), "127.0.0.1", () => process.stdout.write("floor ready\n"));
} else {
  await makeServer().connect(new StdioServerTransport());
}
