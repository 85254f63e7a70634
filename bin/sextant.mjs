#!/usr/bin/env node
// Launcher: Sextant needs Node >= 22 (PostGraphile 5, graphile-worker). The `node` npm package
// ships one; re-run under it when the system node is older. TypeScript runs through tsx.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

process.env.GRAPHILE_ENV ??= "production"; // grafast prints a notice when it is unset
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(root, "src/cli/index.ts");
const major = Number(process.versions.node.split(".")[0]);

if (major >= 22) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(cli).href);
} else {
  const require = createRequire(import.meta.url);
  let node22;
  try {
    node22 = path.join(path.dirname(require.resolve("node/package.json")), "bin/node");
  } catch {
    console.error("sextant needs Node.js 22 or newer (run `npm install` to get the bundled one)");
    process.exit(1);
  }
  const child = spawn(node22, [process.argv[1], ...process.argv.slice(2)], { stdio: "inherit" });
  child.on("exit", (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)));
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
}
