import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SEXTANT_BIN } from "../helpers/cli.ts";
import { createToken } from "../helpers/db.ts";
import { callOk, callRows } from "../helpers/mcpClient.ts";
import { useTestServer } from "../helpers/setup.ts";

// Real MCP clients that no one here wrote, pinned in package.json: the MCP Inspector's CLI and
// mcp-remote (the stdio-to-HTTP bridge desktop clients use). Each child runs with a HOME of its
// own (they keep catalogs and OAuth state there) and a deadline; a stuck one is killed.
const INSPECTOR = path.resolve("node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
const MCP_REMOTE = path.resolve("node_modules/mcp-remote/dist/proxy.js");
const DEADLINE_MS = 45_000; // seconds on a quiet machine; the test machine runs several suites at once

const { db, server } = useTestServer();
let home: string;
let token: string;
beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-clients-"));
  token = await createToken(db, "acme", "outside-clients", "analyst");
});
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

/** The Inspector's CLI with `args`, JSON output; resolves with the result it printed (rejects with its stderr). */
function inspector(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [INSPECTOR, "--cli", "--format", "json", ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: home, NO_COLOR: "1" },
      timeout: DEADLINE_MS,
      killSignal: "SIGKILL",
      maxBuffer: 4 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`inspector ${args.join(" ")} failed (${error.message}): ${stderr}`));
      try {
        resolve((JSON.parse(stdout) as { result: Record<string, unknown> }).result);
      } catch {
        reject(new Error(`inspector printed no JSON: ${stdout.slice(0, 500)} ${stderr}`));
      }
    });
  });
}

const toolNames = (listed: Record<string, unknown>) => (listed.tools as { name: string }[]).map((t) => t.name);
const SQL = JSON.stringify({ sql: "select 6 * 7 as answer" });

describe("MCP Inspector CLI", () => {
  test("over HTTP with a bearer token: lists the tools and calls query", async () => {
    const target = [`${server.url}/mcp`, "--transport", "http", "--header", `Authorization: Bearer ${token}`];
    const listed = await inspector([...target, "--method", "tools/list"]);
    expect(toolNames(listed)).toEqual(expect.arrayContaining(["query", "list_schemas", "whoami"]));
    const called = await inspector([...target, "--method", "tools/call", "--tool-name", "query", "--tool-args-json", SQL]);
    expect(called.isError).toBeFalsy();
    expect(called.structuredContent).toMatchObject({ columns: [{ name: "answer" }], rows: [[42]] });
  }, 2 * DEADLINE_MS);

  test("without a token it is refused, and says so", async () => {
    await expect(inspector([`${server.url}/mcp`, "--transport", "http", "--stored-auth-only", "--method", "tools/list"])).rejects.toThrow(/"auth_required".*Missing Authorization header/);
  }, DEADLINE_MS + 5_000);

  test("over stdio (`sextant mcp --tenant globex`): lists the tools and calls query as that tenant", async () => {
    // The Inspector gives a stdio server 15 s to answer by default; `sextant mcp` starts in a few
    // seconds, many more on a loaded test machine.
    const target = ["--connect-timeout", String(DEADLINE_MS - 5_000), "-e", `DATABASE_URL=${db.adminUrl}`, "-e", "LOG_LEVEL=warn",
      "--", process.execPath, SEXTANT_BIN, "mcp", "--tenant", "globex"];
    const listed = await inspector(["--method", "tools/list", ...target]);
    expect(toolNames(listed)).toEqual(expect.arrayContaining(["query", "list_schemas"]));
    const called = await inspector(["--method", "tools/call", "--tool-name", "query", "--tool-args-json",
      JSON.stringify({ sql: "select sextant.current_tenant() as tenant" }), ...target]);
    expect(called.structuredContent).toMatchObject({ columns: [{ name: "tenant" }], rows: [["globex"]] });
  }, 2 * DEADLINE_MS);
});

describe("mcp-remote (stdio to Sextant's HTTP /mcp)", () => {
  test("an SDK client over stdio lists the tools and calls query through the bridge, as the token's tenant", async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [MCP_REMOTE, `${server.url}/mcp`, "--transport", "http-only", "--header", `Authorization:Bearer ${token}`, "--silent"],
      env: { PATH: process.env.PATH ?? "", HOME: home, MCP_REMOTE_CONFIG_DIR: path.join(home, "mcp-auth") },
      stderr: "pipe",
    });
    let stderr = "";
    transport.stderr?.on("data", (d) => (stderr += String(d)));
    const client = new Client({ name: "through-mcp-remote", version: "1.0.0" });
    const deadline = setTimeout(() => void transport.close(), DEADLINE_MS);
    try {
      await client.connect(transport);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name), stderr).toEqual(expect.arrayContaining(["query", "whoami"]));
      expect(await callOk(client, "whoami")).toMatchObject({ tenant: "acme", access_level: "analyst" });
      expect((await callRows(client, "query", { sql: "select 6 * 7 as answer" })).rows).toEqual([{ answer: 42 }]);
    } finally {
      clearTimeout(deadline);
      await client.close();
    }
  }, DEADLINE_MS + 5_000);
});
