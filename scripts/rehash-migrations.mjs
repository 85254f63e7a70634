#!/usr/bin/env node
// Rewrites the `--! Previous:` / `--! Hash:` headers of migrations/committed/*.sql so the chain
// is valid again after a committed migration was added or edited on a branch (graphile-migrate's
// own hash: sha1 over the previous hash and the trimmed body). Only for migrations no installed
// database has applied yet; an applied migration must never change.
// Usage: node scripts/rehash-migrations.mjs [--from 000020]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { calculateHash } from "graphile-migrate/dist/hash.js";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../migrations/committed");
const fromArg = process.argv.indexOf("--from");
const from = fromArg > 0 ? process.argv[fromArg + 1] : "000020";
const files = fs.readdirSync(dir).filter((f) => /^\d{6}.*\.sql$/.test(f)).sort();
let previous = null;
for (const file of files) {
  const full = path.join(dir, file);
  const text = fs.readFileSync(full, "utf8");
  const lines = text.split("\n");
  let i = 0;
  const headers = [];
  while (i < lines.length && lines[i].startsWith("--!")) headers.push(lines[i++]);
  const body = lines.slice(i).join("\n").replace(/^\n/, "");
  const hash = calculateHash(body, previous);
  if (file >= from) {
    const rest = headers.filter((h) => !/^--! (Previous|Hash):/.test(h));
    const out = [`--! Previous: ${previous ?? "-"}`, `--! Hash: ${hash}`, ...rest].join("\n") + "\n\n" + body;
    if (out !== text) {
      fs.writeFileSync(full, out);
      console.log(`rehashed ${file}`);
    }
  } else {
    const stated = headers.find((h) => h.startsWith("--! Hash:"))?.slice(10).trim();
    if (stated !== hash) throw new Error(`${file}: stated hash ${stated} differs from ${hash} (an applied migration changed)`);
  }
  previous = hash;
}
