/**
 * Floor (b) of the benchmark: the smallest honest MCP server over the same SDK, the same pool
 * kind and the same SQL as Sextant's tool table — and nothing else: no auth, no guard, no role
 * switch per call, no rate limit, no audit. Its connections are set to the tenant's role once.
 *   FLOOR_DB_URL=... FLOOR_ROLE=... node floorServer.ts --http 4321 | --stdio
 */
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import express from "express";
import pg from "pg";
import { allTools } from "../src/mcp/server.ts";

// Connections start in the tenant's role (a startup option): no per-call switching.
const pool = new pg.Pool({ connectionString: process.env.FLOOR_DB_URL, max: 20, options: `-c role=${process.env.FLOOR_ROLE}` });

function createServer(): McpServer {
  const server = new McpServer({ name: "floor", version: "1.0.0" });
  for (const spec of allTools) {
    server.registerTool(spec.name, { description: spec.description, inputSchema: spec.input }, async (input: unknown) => {
      const { rows } = await pool.query(spec.sql, spec.args(input as never));
      const structured = spec.result === "one" ? (rows[0] ?? {}) : { rows };
      return { content: [{ type: "text" as const, text: JSON.stringify(structured) }], structuredContent: structured };
    });
  }
  return server;
}

if (process.argv[2] === "--stdio") {
  await createServer().connect(new StdioServerTransport());
} else {
  const port = Number(process.argv[3]);
  const app = express();
  app.use(express.json({ limit: "1mb" }));
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  app.all("/mcp", async (req, res) => {
    const id = req.header("mcp-session-id");
    let transport = id ? sessions.get(id) : undefined;
    if (!transport && isInitializeRequest(req.body)) {
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        enableJsonResponse: true,
        onsessioninitialized: (sid) => void sessions.set(sid, t),
      });
      transport = t;
      await createServer().connect(t);
    }
    if (!transport) return void res.status(400).end();
    await transport.handleRequest(req, res, req.body);
  });
  app.listen(port, "127.0.0.1", () => process.stdout.write("floor ready\n"));
}
