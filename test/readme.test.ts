import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { projectRoot } from "../src/db/paths.ts";
import { SEXTANT_BIN } from "./helpers/cli.ts";
import { freePort } from "./helpers/ports.ts";

// The README is tested: every shell or JSON block a user is meant to paste carries a marker
// just above it, and the marker says how it is proven:
//   <!-- doctest -->                 run here, as written, against a real `sextant serve`
//   <!-- doctest: expect "text" -->  the same, and its output must contain the text
//   <!-- doctest: stdio (...) -->    the MCP client snippet, started here as a client does
//   <!-- doctest: ci (...) -->       run by .ci/run on a clean clone (the two commands)
//   <!-- doctest: skip (needs X) --> needs something these machines lack
// The only rewriting: the ports (4000 for the server, 8080 for the demo API) become free ones.

interface Block {
  line: number;
  lang: string;
  marker: string | undefined;
  text: string;
}

/** The fenced sh/json blocks of the README with the marker comment right above each. */
function readmeBlocks(): Block[] {
  const lines = fs.readFileSync(path.join(projectRoot, "README.md"), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++;
    const body = lines.slice(i + 1, end).map((l) => l.slice(indent)).join("\n");
    if (open[2] === "sh" || open[2] === "json") {
      const above = lines[i - 1]?.trim() ?? "";
      blocks.push({ line: i + 1, lang: open[2], marker: /^<!-- (doctest.*) -->$/.exec(above)?.[1], text: body });
    }
    i = end;
  }
  return blocks;
}

const blocks = readmeBlocks();
const runnable = blocks.filter((b) => b.marker === "doctest" || b.marker?.startsWith("doctest: expect"));

test("every shell and JSON block in the README is run by a test or says what it needs", () => {
  expect(blocks.length).toBeGreaterThan(8);
  for (const b of blocks) {
    expect(b.marker, `README.md:${b.line} has no <!-- doctest … --> marker`).toMatch(/^doctest(: (expect "[^"]+"|stdio \(.+\)|ci \(.+\)|skip \(needs .+\)))?$/);
  }
  expect(runnable.length).toBeGreaterThanOrEqual(6);
  expect(blocks.filter((b) => b.marker?.startsWith("doctest: stdio"))).toHaveLength(1);
});

let dataDir: string;
let serve: ChildProcess;
let env: Record<string, string>;
let port: number;
let apiPort: number;
let serveErr = "";

/** Runs a README block with bash (-e, pipefail) in the checkout, as a user would paste it. */
function runBlock(text: string): Promise<{ code: number | null; out: string }> {
  const script = text.replaceAll("localhost:4000", `localhost:${port}`).replaceAll("8080", String(apiPort));
  return new Promise((resolve) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], { cwd: projectRoot, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += String(d)));
    child.stderr!.on("data", (d) => (out += String(d)));
    // 'exit', not 'close': a background job the block left running (it should not) keeps the pipes open.
    child.on("exit", (code) => {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // the group is gone already
      }
      setTimeout(() => resolve({ code, out }), 100);
    });
  });
}

describe("README blocks, run as written against a real server", () => {
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-readme-"));
    fs.chmodSync(dataDir, 0o755);
    port = await freePort();
    apiPort = await freePort();
    env = {
      PATH: process.env.PATH!,
      HOME: process.env.HOME ?? os.tmpdir(),
      SEXTANT_DATA_DIR: dataDir,
      SEXTANT_PG_PORT: String(await freePort()),
      PORT: String(port),
      SEXTANT_SOURCE_ALLOW_HOSTS: `127.0.0.1:${apiPort}`, // as the README says (127.0.0.1:8080), on the free port
      LOG_LEVEL: "warn",
    };
    serve = spawn(process.execPath, [SEXTANT_BIN, "serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
    serve.stderr!.on("data", (d) => (serveErr += String(d)));
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`serve did not become ready: ${serveErr}`)), 120_000);
      serve.stdout!.on("data", (d) => {
        out += String(d);
        if (out.includes("demo token")) {
          clearTimeout(timer);
          resolve();
        }
      });
      serve.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${serveErr}`)));
    });
  }, 180_000);

  afterAll(async () => {
    if (serve?.exitCode === null) {
      await new Promise((r) => {
        serve.removeAllListeners("exit");
        serve.on("exit", r);
        serve.kill("SIGTERM");
      });
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  for (const block of runnable) {
    const first = block.text.split("\n")[0]!.replace(/\s+#.*$/, "");
    test(`README.md:${block.line} runs: ${first}`, async () => {
      const { code, out } = await runBlock(block.text);
      expect(code, out).toBe(0);
      const expected = /^doctest: expect "(.+)"$/.exec(block.marker!)?.[1];
      if (expected) expect(out).toContain(expected);
    }, 300_000);
  }

  test("the stdio snippet for Claude Desktop / Claude Code starts from another directory with only its env", async () => {
    const snippet = blocks.find((b) => b.marker?.startsWith("doctest: stdio"))!;
    // The snippet's placeholders: the checkout, and its data directory (here: the test server's).
    const json = snippet.text.replaceAll("/path/to/sextant/.sextant", dataDir).replaceAll("/path/to/sextant", projectRoot);
    const entry = (JSON.parse(json) as { mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }> }).mcpServers.sextant!;
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-client-cwd-"));
    // As a client does: its own working directory, the SDK's default environment (HOME, PATH, ...)
    // plus only what the snippet gives. Node 20 on PATH is enough: the launcher finds Node 22.
    const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: entry.env, cwd: elsewhere, stderr: "pipe" });
    let stderr = "";
    transport.stderr?.on("data", (d) => (stderr += String(d)));
    const client = new Client({ name: "readme-test", version: "1.0.0" });
    try {
      await client.connect(transport);
      const result = (await client.callTool({ name: "whoami", arguments: {} })) as { isError?: boolean; content: { text: string }[] };
      expect(result.isError, stderr).toBeFalsy();
      expect(result.content[0]!.text).toContain("demo");
      const tables = (await client.callTool({ name: "list_tables", arguments: { schema: "shop" } })) as { content: { text: string }[] };
      expect(tables.content[0]!.text).toContain("orders");
    } finally {
      await client.close();
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
    // It used the data directory it was given, not one of its own in the client's directory.
    expect(fs.existsSync(path.join(elsewhere, ".sextant"))).toBe(false);
  }, 120_000);
});
