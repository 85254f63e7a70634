import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SEXTANT_BIN } from "./cli.ts";

/** A real MCP SDK client connected over Streamable HTTP with a Bearer token. */
export async function connectHttp(baseUrl: string, token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "sextant-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

/**
 * A real MCP SDK (v1) client for `sextant mcp <args>` over stdio on `databaseUrl`, not yet
 * connected (`client.connect(transport)`); the server's stderr is piped (transport.stderr).
 */
export function stdioMcpClient(databaseUrl: string, args: string[], env: Record<string, string> = {}): { client: Client; transport: StdioClientTransport } {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [SEXTANT_BIN, "mcp", ...args],
    env: { PATH: process.env.PATH ?? "", DATABASE_URL: databaseUrl, LOG_LEVEL: "warn", ...env },
    stderr: "pipe",
  });
  return { transport, client: new Client({ name: "sextant-test", version: "1.0.0" }) };
}

/** The structuredContent of a tool call, failing loudly when the call was an error. */
export async function callOk(client: Client, name: string, args: Record<string, unknown> = {}) {
  const result = await client.callTool({ name, arguments: args });
  if (result.isError) throw new Error(`tool ${name} failed: ${JSON.stringify(result.content)}`);
  return result.structuredContent as Record<string, unknown>;
}

/**
 * The rows of a `query` or `sample_table` structuredContent (arrays of values in the order of
 * `columns`) as objects keyed by column name, for assertions by name. Fails when a row is not an
 * array of exactly one value per column.
 */
export function rowObjects(structured: unknown): Record<string, unknown>[] {
  const { columns, rows } = structured as { columns: { name: string }[]; rows: unknown[] };
  return rows.map((row, i) => {
    if (!Array.isArray(row) || row.length !== columns.length) throw new Error(`row ${i} is not an array of ${columns.length} values: ${JSON.stringify(row)}`);
    return Object.fromEntries(columns.map((c, k) => [c.name, row[k]]));
  });
}

/** callOk for `query` and `sample_table`: the structuredContent with its rows as objects (rowObjects). */
export async function callRows(client: Client, name: string, args: Record<string, unknown> = {}) {
  const structured = await callOk(client, name, args);
  return { ...structured, rows: rowObjects(structured) } as Record<string, unknown> & { rows: Record<string, unknown>[] };
}

/** The first text block of a tool result. */
export function textOf(result: unknown): string {
  return ((result as { content: { text: string }[] }).content[0]?.text) ?? "";
}

/**
 * One raw JSON-RPC message POSTed to `url` (…/mcp, with a query if any) as an MCP client would
 * send it, bearing `token`; `headers` add to or replace the defaults. For what the SDK client
 * would not send: hostile headers, pinned protocol versions, a bare initialize.
 */
export function postMcp(url: string, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  });
}
