import { execFile, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { SEXTANT_BIN } from "./helpers/cli.ts";

// bin/sextant.mjs builds the CLI bundle into a fresh folder and points dist/cli at it in one
// rename. Run here from a copy of the launcher and src in a temporary project (node_modules
// linked to this checkout's), so the checkout's own dist/ is not rebuilt under other tests.
let project: string;
const dist = () => path.join(project, "dist");
const launcher = () => path.join(project, "bin/sextant.mjs");

beforeAll(() => {
  project = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-bundle-"));
  fs.mkdirSync(path.join(project, "bin"));
  fs.copyFileSync(SEXTANT_BIN, launcher());
  // A copy of src: edits made meanwhile in this checkout must not count as newer sources here.
  fs.cpSync(path.resolve("src"), path.join(project, "src"), { recursive: true, preserveTimestamps: true });
  for (const name of ["node_modules", "package.json"]) fs.symlinkSync(path.resolve(name), path.join(project, name));
});
afterAll(() => fs.rmSync(project, { recursive: true, force: true }));

/** `sextant --help` through the temporary project's launcher: it rebuilds when the launcher is newer than the bundle. */
function help(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [launcher(), "--help"], { timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Makes the next start rebuild: the launcher's own time counts as a source's. */
function touchLauncher() {
  const now = new Date();
  fs.utimesSync(launcher(), now, now);
}

/** The files the entry loads, following static and dynamic imports of its chunks. */
function imported(dir: string): Set<string> {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const text = fs.readFileSync(path.join(dir, name), "utf8");
    for (const m of text.matchAll(/(?:from|import\()\s*"\.\/([\w.-]+\.mjs)"/g)) visit(m[1]!);
  };
  visit("sextant.mjs");
  return seen;
}

/** dist/cli's real folder, after checking it holds exactly what its entry imports. */
function checkWhole(): string {
  const link = path.join(dist(), "cli");
  expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
  const dir = fs.realpathSync(link);
  expect(new Set(fs.readdirSync(dir))).toEqual(imported(dir));
  return dir;
}

const builds = () => fs.readdirSync(dist()).filter((n) => n.startsWith(".cli-")).sort();

test("a rebuild writes a fresh folder: dist/cli holds only the chunks its entry imports; retired builds go after 10 minutes", { timeout: 600_000 }, async () => {
  // A dist/cli from before (a plain folder, with a chunk no entry imports and a stale entry).
  fs.mkdirSync(path.join(dist(), "cli"), { recursive: true });
  fs.writeFileSync(path.join(dist(), "cli/chunk-STALE.mjs"), "export const x = 1;\n");
  fs.writeFileSync(path.join(dist(), "cli/sextant.mjs"), "throw new Error('stale bundle');\n");
  fs.utimesSync(path.join(dist(), "cli/sextant.mjs"), new Date(0), new Date(0));

  const first = await help();
  expect(first.stderr).toBe("");
  expect(first.stdout).toContain("Usage: sextant");
  const one = checkWhole();
  expect(imported(one).size).toBeGreaterThan(3);

  touchLauncher();
  const second = await help();
  expect(second.stdout).toContain("Usage: sextant");
  const two = checkWhole();
  expect(two).not.toBe(one);
  // The build just retired stays for the processes started from it.
  expect(builds()).toContain(path.basename(one));

  // Ten minutes on, the next rebuild removes it (and the old plain folder).
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (const name of builds()) if (path.join(dist(), name) !== two) fs.utimesSync(path.join(dist(), name), hourAgo, hourAgo);
  touchLauncher();
  expect((await help()).stdout).toContain("Usage: sextant");
  const three = checkWhole();
  expect(builds()).toEqual([path.basename(two), path.basename(three)].sort());
});

test("two starts rebuilding at once both run, and dist/cli is one whole build", { timeout: 600_000 }, async () => {
  touchLauncher();
  const [a, b] = await Promise.all([help(), help()]);
  expect(a.stdout).toContain("Usage: sextant");
  expect(b.stdout).toContain("Usage: sextant");
  // Each ran a bundle: a start whose build failed says so (and would have run from source).
  expect(a.stderr + b.stderr).toBe("");
  checkWhole();
  // A start with nothing newer builds nothing.
  const before = builds();
  expect((await help()).stdout).toContain("Usage: sextant");
  expect(builds()).toEqual(before);
});

/** A node older than 22 on PATH (the launcher re-runs itself under the `node` package's), if any. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "node");
    if (!fs.existsSync(candidate)) continue;
    try {
      const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim();
      if (Number(version.replace(/^v/, "").split(".")[0]) < 22) return candidate;
    } catch {}
  }
  return undefined;
}

test.skipIf(!olderNode())("under an older node, node's own options reach the Node 22 it runs Sextant in", { timeout: 300_000 }, async () => {
  const probe = path.join(project, "probe.cjs");
  const out = path.join(project, "probe.out");
  // Loaded by --require in every process given it: says which node it runs in and with what.
  fs.writeFileSync(probe, `require("node:fs").appendFileSync(${JSON.stringify(out)}, JSON.stringify({ major: Number(process.versions.node.split(".")[0]), execArgv: process.execArgv }) + "\\n");\n`);
  const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
    execFile(olderNode()!, ["--heap-growing-percent=30", "--require", probe, launcher(), "--help"], { timeout: 120_000 }, (_error, stdout, stderr) => resolve({ stdout, stderr }));
  });
  expect(r.stdout, r.stderr).toContain("Usage: sextant");
  const seen = fs.readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { major: number; execArgv: string[] });
  expect(seen.map((s) => s.major >= 22)).toEqual([false, true]);
  // The child got them: the launcher there leaves V8's growing factor to the one given.
  expect(seen[1]!.execArgv).toEqual(["--heap-growing-percent=30", "--require", probe]);
});

test.skipIf(!olderNode())("under an older node, a Sextant ended by a signal ends the launcher by the same signal", { timeout: 300_000 }, async () => {
  // In the Node 22 child only: SIGTERM itself before the launcher runs (no handler yet).
  const probe = path.join(project, "sigterm.cjs");
  fs.writeFileSync(probe, `if (Number(process.versions.node.split(".")[0]) >= 22) process.kill(process.pid, "SIGTERM");\n`);
  const r = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    const child = spawn(olderNode()!, ["--require", probe, launcher(), "--help"], { stdio: "ignore" });
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });
  expect(r).toEqual({ code: null, signal: "SIGTERM" });
});
