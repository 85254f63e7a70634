#!/usr/bin/env node
// Builds the web console (console/src → dist/console) and the MCP Apps' pages (console/mcp-apps →
// dist/console/mcp-apps/*.html, one self-contained file each, as MCP Apps hosts load them).
// Run by `npm run build:console`, and by `prepare` (npm install in a clone, npm pack). Without
// esbuild (an install that omits dev dependencies) it says so and leaves dist/ as it is.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, "../dist/console");
let esbuild;
try {
  esbuild = await import("esbuild");
} catch {
  console.warn("console: esbuild is not installed (dev dependency); the console is not rebuilt");
  process.exit(0);
}

const common = {
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
};

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, "assets"), { recursive: true });
const result = await esbuild.build({
  ...common,
  entryPoints: { app: path.join(here, "src/main.tsx") },
  outdir: path.join(out, "assets"),
  metafile: true,
});
fs.copyFileSync(path.join(here, "index.html"), path.join(out, "index.html"));

// MCP Apps: each page inlines its script and style (hosts render the HTML resource alone).
fs.mkdirSync(path.join(out, "mcp-apps"), { recursive: true });
const appsDir = path.join(here, "mcp-apps");
const apps = fs.existsSync(appsDir) ? fs.readdirSync(appsDir).filter((f) => /^[a-z]+\.tsx$/.test(f)).map((f) => f.slice(0, -4)) : [];
for (const name of apps) {
  const built = await esbuild.build({ ...common, entryPoints: [path.join(here, `mcp-apps/${name}.tsx`)], write: false, outdir: "/" });
  const js = built.outputFiles.find((f) => f.path.endsWith(".js")).text;
  const css = built.outputFiles.find((f) => f.path.endsWith(".css"))?.text ?? "";
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="color-scheme" content="light dark"><title>Sextant</title><style>${css}</style></head>` +
    `<body><div id="app"></div><script type="module">${js.replace(/<\/script/gi, "<\\/script")}</script></body></html>`;
  fs.writeFileSync(path.join(out, "mcp-apps", `${name}.html`), html);
}
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`console: built dist/console (${Math.round(bytes / 1024)} KB before gzip)`);
