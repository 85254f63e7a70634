import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestDatabase, createToken, type TestDatabase } from "../helpers/db.ts";
import { startTestServer } from "../helpers/server.ts";
import { startProxy, type Proxy } from "./proxy.ts";

// The official MCP conformance suite (@modelcontextprotocol/conformance, pinned) against a
// running Sextant. The suite cannot send a bearer token, so it talks to a small proxy that adds
// one. Scenarios that call the suite's own test tools (test_image_content, test_simple_prompt,
// …) or features Sextant does not declare are not applicable; the README lists them with why.

/** Scenario → why it does not apply to Sextant (kept in step with the README's table). */
export const NOT_APPLICABLE: Record<string, string> = {
  "logging-set-level": "Sextant does not declare the logging capability",
  "completion-complete": "Sextant declares no completions (needs the suite's test_complete prompt)",
  "tools-call-simple-text": "calls the suite's own tool test_simple_text",
  "tools-call-image": "calls the suite's own tool test_image_content",
  "tools-call-audio": "calls the suite's own tool test_audio_content",
  "tools-call-embedded-resource": "calls the suite's own tool test_embedded_resource",
  "tools-call-mixed-content": "calls the suite's own tool test_multiple_content_types",
  "tools-call-with-logging": "calls the suite's own tool test_tool_with_logging",
  "tools-call-error": "calls the suite's own tool test_error_handling",
  "tools-call-with-progress": "calls the suite's own tool test_tool_with_progress (run_materialization's progress is tested in test/materialize.test.ts)",
  "tools-call-sampling": "calls the suite's own tool test_sampling; Sextant never asks the client's model",
  "tools-call-elicitation": "calls the suite's own tool test_elicitation; Sextant never asks the user",
  "elicitation-sep1034-defaults": "calls the suite's own elicitation tool",
  "elicitation-sep1330-enums": "calls the suite's own elicitation tool",
  "json-schema-2020-12": "looks for the suite's own tool json_schema_2020_12_tool",
  "server-sse-polling": "calls the suite's own tool test_reconnection; Sextant is stateless (no session to resume)",
  "resources-read-text": "reads the suite's test://static-text",
  "resources-read-binary": "reads the suite's test://static-binary",
  "resources-templates-read": "reads the suite's test://template/{id}/data",
  "resources-subscribe": "Sextant does not declare resource subscriptions",
  "resources-unsubscribe": "Sextant does not declare resource subscriptions",
  "prompts-get-simple": "gets the suite's own prompt test_simple_prompt",
  "prompts-get-with-args": "gets the suite's own prompt test_prompt_with_arguments",
  "prompts-get-embedded-resource": "gets the suite's own prompt test_prompt_with_embedded_resource",
  "prompts-get-with-image": "gets the suite's own prompt test_prompt_with_image",
};

let db: TestDatabase;
let server: Awaited<ReturnType<typeof startTestServer>>;
let proxy: Proxy;
let out: string;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db);
  proxy = await startProxy([server.url], { authorization: `Bearer ${await createToken(db, "demo", "conformance")}` });
  out = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-conformance-"));
});
afterAll(async () => {
  await proxy?.close();
  await server?.close();
  await db?.drop();
  if (out) fs.rmSync(out, { recursive: true, force: true });
});

type Check = { id: string; status: string; errorMessage?: string };

test("the official conformance suite: every scenario for a capability Sextant declares passes", { timeout: 85_000 }, async () => {
  const bin = path.resolve("node_modules/@modelcontextprotocol/conformance/dist/index.js");
  const run = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [bin, "server", "--url", `${proxy.url}/mcp`, "-o", out], { timeout: 80_000, maxBuffer: 16 << 20 }, (_e, stdout, stderr) =>
      resolve({ stdout, stderr }));
  });
  const scenarios = new Map<string, Check[]>();
  for (const dir of fs.readdirSync(out)) {
    const file = path.join(out, dir, "checks.json");
    if (!fs.existsSync(file)) continue;
    const name = dir.replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T.*$/, "");
    scenarios.set(name, JSON.parse(fs.readFileSync(file, "utf8")) as Check[]);
  }
  expect(scenarios.size, run.stdout.slice(-2000) + run.stderr.slice(-2000)).toBeGreaterThanOrEqual(30);
  const table: string[] = [];
  const failures: string[] = [];
  for (const [name, checks] of [...scenarios].sort()) {
    const failed = checks.filter((c) => c.status === "FAILURE");
    const status = failed.length === 0 ? "passed" : NOT_APPLICABLE[name] ? "not applicable" : "FAILED";
    table.push(`| ${name} | ${status} |${status === "not applicable" ? ` ${NOT_APPLICABLE[name]} ` : " "}|`);
    if (status === "FAILED") failures.push(`${name}: ${failed.map((c) => `${c.id}: ${c.errorMessage}`).join("; ")}`);
  }
  console.log(`conformance (${scenarios.size} scenarios):\n${table.join("\n")}`);
  expect(failures).toEqual([]);
  // The scenarios every MCP server must pass, whatever it declares.
  for (const name of ["server-initialize", "ping", "tools-list", "prompts-list", "dns-rebinding-protection"]) {
    expect(scenarios.get(name)?.every((c) => c.status !== "FAILURE"), name).toBe(true);
  }
});
