import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { projectRoot } from "../src/db/paths.ts";
import { freePort } from "./helpers/ports.ts";
import { useTestDatabase } from "./helpers/setup.ts";

// No Docker engine runs on these machines, so the image is not built here. What can be checked
// is checked: the final stage's command and healthcheck, run as they are written (from the
// checkout, which holds the files the image copies), against a real PostgreSQL; and the rules
// the image must keep (non-root, production dependencies only, nothing installed at start).

interface Stage {
  from: string;
  lines: string[];
}

function dockerfileStages(): Stage[] {
  const text = fs.readFileSync(path.join(projectRoot, "Dockerfile"), "utf8").replace(/\\\n\s*/g, " ");
  const stages: Stage[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (/^FROM /i.test(line)) stages.push({ from: line.slice(5), lines: [] });
    else stages.at(-1)!.lines.push(line);
  }
  return stages;
}

const stages = dockerfileStages();
const final = stages.at(-1)!;
const instruction = (name: string) => final.lines.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

/** ENV k=v k2=v2 (quoted values not used in our Dockerfile). */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of instruction("ENV")) for (const pair of line.split(/\s+/)) {
    const [k, v] = pair.split("=");
    env[k!] = v!;
  }
  return env;
}

test("the image runs as a non-root user, with production dependencies only and nothing installed at start", () => {
  expect(stages.length).toBeGreaterThanOrEqual(2);
  expect(final.from).toMatch(/^node:22/);
  expect(instruction("USER")).toEqual(["node"]);
  // node_modules comes from a stage that installs production dependencies only; the console's
  // bundle is built in a stage of its own, of which only dist/console is copied.
  const named = (as: string) => stages.find((s) => s.from.endsWith(` AS ${as}`))!;
  const copiesFrom = (as: string) => final.lines.filter((l) => l.startsWith(`COPY --from=${as} `));
  expect(copiesFrom("deps")).toEqual(["COPY --from=deps /app/node_modules ./node_modules"]);
  expect(named("deps").lines.filter((l) => /npm (ci|install)/.test(l))).toEqual([expect.stringContaining("--omit=dev")]);
  expect(copiesFrom("console")).toEqual(["COPY --from=console /app/dist/console ./dist/console"]);
  expect(named("console").lines).toContain("COPY console ./console");
  expect(final.lines.filter((l) => l.startsWith("COPY --from=")).length).toBe(2);
  expect(final.lines.some((l) => /^RUN .*npm (ci|install)/.test(l))).toBe(false);
  const cmd = JSON.parse(instruction("CMD")[0]!) as string[];
  expect(cmd.join(" ")).not.toMatch(/npm|npx/);
  // Every path the image copies exists in the checkout and is in the npm package too.
  const pkg = JSON.parse(fs.readFileSync(path.join(projectRoot, "package.json"), "utf8")) as { files: string[] };
  for (const copy of instruction("COPY").filter((c) => !c.startsWith("--from"))) {
    for (const src of copy.split(/\s+/).slice(0, -1)) {
      expect(fs.existsSync(path.join(projectRoot, src)), src).toBe(true);
      if (!["package.json", "package-lock.json"].includes(src)) expect(pkg.files.map((f) => f.replace(/\/$/, ""))).toContain(src);
    }
  }
});

test("docker-compose builds this image and does not override its command", () => {
  const compose = parseYaml(fs.readFileSync(path.join(projectRoot, "docker-compose.yml"), "utf8")) as {
    services: Record<string, { build?: string; command?: unknown; image?: string }>;
  };
  expect(compose.services.sextant!.build).toBe(".");
  expect(compose.services.sextant!.command).toBeUndefined();
  expect(compose.services.sextant!.image).toBeUndefined();
});

describe("the image's command and healthcheck, run as written", () => {
  const db = useTestDatabase();
  let child: ChildProcess;
  let env: Record<string, string>;
  let dataDir: string;
  let stderr = "";

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-image-"));
    // The image's ENV, with what a container would get from outside (docker-compose's
    // DATABASE_URL) and two changes for a shared machine: a free port on loopback instead of
    // 4000 on every interface, and a temporary data directory instead of /data.
    env = {
      PATH: process.env.PATH!,
      ...imageEnv(),
      DATABASE_URL: db.adminUrl,
      HOST: "127.0.0.1",
      PORT: String(await freePort()),
      SEXTANT_DATA_DIR: dataDir,
    };
    const [command, ...args] = JSON.parse(instruction("CMD")[0]!) as string[];
    // `node` in the image is Node 22; here it is the Node running this test (22 as well).
    child = spawn(command === "node" ? process.execPath : command!, args, { cwd: projectRoot, env, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.on("data", (d) => (stderr += String(d)));
  });

  afterAll(async () => {
    if (child.exitCode === null) await new Promise((r) => (child.on("exit", r), child.kill("SIGTERM")));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  test("the command starts the server against an external PostgreSQL and the healthcheck then passes", async () => {
    const healthcheck = instruction("HEALTHCHECK")[0]!;
    const exec = JSON.parse(healthcheck.slice(healthcheck.indexOf("CMD ") + 4)) as string[];
    expect(exec[0]).toBe("node");
    const check = () => spawnSync(process.execPath, exec.slice(1), { env, timeout: 10_000 }).status;
    const deadline = Date.now() + 120_000;
    let status = check();
    while (status !== 0 && Date.now() < deadline) {
      expect(child.exitCode, stderr).toBeNull();
      await new Promise((r) => setTimeout(r, 500));
      status = check();
    }
    expect(status, stderr).toBe(0);
    const ready = await fetch(`http://127.0.0.1:${env.PORT}/ready`);
    expect(ready.status).toBe(200);
  }, 150_000);
});
