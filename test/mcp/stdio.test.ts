import { Client as ClientV2 } from "@modelcontextprotocol/client";
import { StdioClientTransport as StdioTransportV2 } from "@modelcontextprotocol/client/stdio";
import { afterAll, beforeAll, expect, test } from "vitest";
import { SEXTANT_BIN } from "../helpers/cli.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { callOk, stdioMcpClient } from "../helpers/mcpClient.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const stdioClient = (args: string[]) => stdioMcpClient(db.adminUrl, args);

test("`sextant mcp --tenant` serves the tools over stdio as that tenant to a 2025 client (SDK v1, initialize)", async () => {
  const { client, transport } = stdioClient(["--tenant", "globex"]);
  await client.connect(transport);
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toContain("list_schemas");
  expect(await callOk(client, "whoami")).toMatchObject({ tenant: "globex", access_level: "viewer", auth_method: "local" });
  const schemas = await callOk(client, "list_schemas");
  expect((schemas.rows as { schema_name: string }[]).map((r) => r.schema_name)).toEqual(["globex_ops"]);
  await client.close();
});

test("`sextant mcp` speaks 2026-07-28 to an SDK v2 client (server/discover) on the same command", async () => {
  const transport = new StdioTransportV2({
    command: process.execPath,
    args: [SEXTANT_BIN, "mcp", "--tenant", "globex", "--role", "analyst"],
    env: { PATH: process.env.PATH ?? "", DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn" },
    stderr: "pipe",
  });
  const client = new ClientV2({ name: "stdio-test-v2", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } });
  await client.connect(transport);
  // "auto" falls back to initialize (2025-11-25) when a server does not answer server/discover.
  expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28");
  expect((await client.listTools()).tools.map((t) => t.name)).toContain("query");
  const me = await client.callTool({ name: "whoami", arguments: {} });
  expect(me.structuredContent).toMatchObject({ tenant: "globex", access_level: "analyst", auth_method: "local" });
  const rows = await client.callTool({ name: "query", arguments: { sql: "select 6 * 7 as answer" } });
  expect(rows.isError).toBeFalsy();
  expect(rows.structuredContent).toMatchObject({ columns: [{ name: "answer" }], rows: [[42]] });
  await client.close();
});

test("`sextant mcp` with an unknown tenant exits with a clear message", async () => {
  const { client, transport } = stdioClient(["--tenant", "nosuch"]);
  let stderr = "";
  transport.stderr?.on("data", (d) => (stderr += String(d)));
  await expect(client.connect(transport)).rejects.toThrow();
  expect(stderr).toContain("tenant nosuch does not exist");
  expect(stderr).not.toMatch(/at .*\.ts:\d+/);
});
