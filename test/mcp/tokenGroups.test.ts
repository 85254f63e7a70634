import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { describe, expect, test } from "vitest";
import { allTools } from "../../src/mcp/server.ts";
import { runCli } from "../helpers/cli.ts";
import { eventually } from "../helpers/graphql.ts";
import { connectHttp } from "../helpers/mcpClient.ts";
import { useTestServer } from "../helpers/setup.ts";

const { db, server } = useTestServer();

const namesOf = (groups: string[]) => allTools.filter((t) => groups.includes(t.group)).map((t) => t.name).sort();

/** A token made the way an admin makes one: `sextant token create … --groups`. */
async function cliToken(name: string, groups: string): Promise<string> {
  const out = await runCli(["token", "create", "--tenant", "demo", "--name", name, "--role", "analyst", "--groups", groups], { DATABASE_URL: db.adminUrl });
  expect(out.stderr).toBe("");
  expect(out.code).toBe(0);
  return out.stdout.trim();
}

async function connectModern(token: string, headers: Record<string, string> = {}) {
  const transport = new TransportV2(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } } });
  const client = new ClientV2({ name: "sextant-test-v2", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await client.connect(transport);
  return client;
}

function rawList(token: string, headers: Record<string, string>, query = "") {
  return fetch(`${server.url}/mcp${query}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}`, "mcp-protocol-version": "2025-06-18", ...headers },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
  });
}

describe("tool groups per API token", () => {
  test("a token made with --groups lists only its groups (2026 and 2025 clients); a header narrows it", async () => {
    const token = await cliToken("grouped-agent", "catalog,query");
    const modern = await connectModern(token);
    expect((await modern.listTools()).tools.map((t) => t.name).sort()).toEqual(namesOf(["catalog", "query"]));
    expect((await modern.callTool({ name: "query", arguments: { sql: "select 1 as one" } })).isError).toBeFalsy();
    await modern.close();
    const { client: legacy } = await connectHttp(server.url, token);
    expect((await legacy.listTools()).tools.map((t) => t.name).sort()).toEqual(namesOf(["catalog", "query"]));
    await legacy.close();
    const narrowed = await connectModern(token, { "sextant-tool-groups": "query" });
    expect((await narrowed.listTools()).tools.map((t) => t.name).sort()).toEqual(namesOf(["query"]));
    await narrowed.close();
    const listed = await runCli(["token", "list", "--tenant", "demo"], { DATABASE_URL: db.adminUrl });
    expect(listed.stdout).toMatch(new RegExp(`grouped-agent\\s+${token.slice(4, 12)}\\s+analyst\\s+active\\s+catalog,query\\s`));
    // Revoking goes through the same list (view) with the new column.
    const revoked = await runCli(["token", "revoke", token.slice(4, 12)], { DATABASE_URL: db.adminUrl });
    expect(revoked.stdout).toBe(`revoked token ${token.slice(4, 12)} of grouped-agent (demo)\n`);
    expect(await eventually(async () => (await rawList(token, {})).status === 401)).toBe(true);
  });

  test("hostile: a header or ?groups= cannot widen a token past its groups", async () => {
    const token = await cliToken("narrow-agent", "catalog");
    // Asking for everything yields the token's groups only, and a tool of another group is not there.
    const wide = await connectModern(token, { "sextant-tool-groups": "catalog,query,dbt,knowledge,materialization" });
    expect((await wide.listTools()).tools.map((t) => t.name).sort()).toEqual(namesOf(["catalog"]));
    const call = await wide.callTool({ name: "query", arguments: { sql: "select 1" } }).catch((e: Error) => ({ isError: true, content: [{ text: e.message }] }));
    expect(call.isError).toBe(true);
    expect(JSON.stringify(call.content)).toMatch(/query/);
    await wide.close();
    // Asking only for groups the token is not for is refused, by header and by URL, 2025 and 2026 alike.
    for (const [headers, query] of [[{ "sextant-tool-groups": "query" }, ""], [{}, "?groups=materialization"], [{ "sextant-tool-groups": "dbt", "mcp-protocol-version": "2026-07-28" }, ""]] as const) {
      const res = await rawList(token, headers, query);
      expect(res.status).toBe(403);
      const body = (await res.json()) as { error: { message: string; data: { code: string } } };
      expect(body.error.message).toBe("SX403: this token is for the tool groups catalog only");
      expect(body.error.data.code).toBe("SX403");
    }
    // A raw 2025 tools/call for a tool outside the token's groups finds no such tool.
    const res = await fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}`, "mcp-protocol-version": "2025-06-18", "sextant-tool-groups": "catalog,materialization" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "run_materialization", arguments: {} } }),
    });
    const text = await res.text();
    expect(text).toMatch(/run_materialization/);
    expect(text).toMatch(/not found/i);
    expect(text).not.toMatch(/"run_id"/);
  });

  test("bad groups are clear errors: the CLI refuses unknown names; SQL refuses what the CLI would not make", async () => {
    const out = await runCli(["token", "create", "--tenant", "demo", "--name", "x", "--groups", "catalog,secrets"], { DATABASE_URL: db.adminUrl });
    expect(out.code).not.toBe(0);
    expect(out.stdout).toBe("");
    expect(out.stderr).toContain('unknown tool group "secrets"');
    expect(out.stderr).toContain("known groups: catalog, query, dbt, knowledge, materialization");
    await expect(db.admin.query("select sextant_private.create_api_token('demo', 'y', 'viewer', null, array['secrets'])")).rejects.toMatchObject({ code: "23514" });
    await expect(db.admin.query("select sextant_private.create_api_token('demo', 'y', 'viewer', null, array[]::text[])")).rejects.toMatchObject({ code: "23514" });
  });
});
