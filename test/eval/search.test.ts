import path from "node:path";
import pg from "pg";
import { beforeAll, expect, test } from "vitest";
import { projectRoot } from "../../src/db/paths.ts";
import { createEmbedder, embedDbtProject } from "../../src/dbt/embeddings.ts";
import { loadDbtArtifacts } from "../../src/dbt/loadArtifacts.ts";
import { asRole, withTx } from "../helpers/db.ts";
import { useTestDatabase } from "../helpers/setup.ts";
import { tuvaHeldOut, tuvaQuestions, type EvalQuestion } from "./tuvaQuestions.ts";

// Search quality on the real Tuva project: recall@5 and MRR@10 of search_dbt_models beside a
// naive token-overlap ranker over the same nodes, for all questions and for the hard ones.
const db = useTestDatabase();

beforeAll(async () => {
  const client = new pg.Client({ connectionString: db.adminUrl });
  await client.connect();
  await loadDbtArtifacts(client, { tenant: "acme", dir: path.resolve(projectRoot, "test/fixtures/dbt/tuva") });
  await client.end();
}, 120_000);

const STOP = new Set(["the", "and", "for", "with", "per", "from", "by", "of", "to", "a", "an", "in", "on", "at", "is", "are", "what", "which", "where", "how"]);
const tokens = (text: string) => (text.toLowerCase().match(/[a-z0-9]+/g) ?? []).filter((t) => t.length > 1 && !STOP.has(t));

function score(rankings: string[][], questions: EvalQuestion[]) {
  let hits = 0;
  let rr = 0;
  questions.forEach((q, i) => {
    const ranked = rankings[i]!;
    const first = ranked.findIndex((name) => q.answers.includes(name));
    if (first >= 0 && first < 5) hits += 1;
    if (first >= 0 && first < 10) rr += 1 / (first + 1);
  });
  return { recall5: hits / questions.length, mrr10: rr / questions.length };
}

/**
 * With SEXTANT_EVAL_EMBEDDINGS_URL (and _MODEL, _API_KEY) set, the evaluation also runs with
 * the question's vector from that endpoint blended in: how to measure a real embeddings model
 * on this set (none can run on the build machines, so CI measures words only).
 */
const evalEmbedder = createEmbedder(
  process.env.SEXTANT_EVAL_EMBEDDINGS_URL
    ? { url: process.env.SEXTANT_EVAL_EMBEDDINGS_URL, model: process.env.SEXTANT_EVAL_EMBEDDINGS_MODEL ?? "text-embedding-3-small", apiKey: process.env.SEXTANT_EVAL_EMBEDDINGS_API_KEY }
    : undefined,
);

/** Our ranking and the naive ranking (top 10 model names) of each question. */
async function rankAll(questions: EvalQuestion[], vectors?: number[][]) {
  return withTx(db.auth, async (client) => {
    await asRole(client, "sextant_t_acme");
    const ours: string[][] = [];
    for (const [i, q] of questions.entries()) {
      const { rows } = await client.query("select name from sextant.search_dbt_models($1, 10, $2, $3) where resource_type = 'model'",
        [q.question, vectors?.[i] ?? null, vectors ? evalEmbedder!.model : null]);
      ours.push(rows.map((r) => r.name));
    }
    const { rows: nodes } = await client.query(
      `select name, coalesce(description, '') || ' ' || coalesce((select string_agg((c ->> 'name') || ' ' || coalesce(c ->> 'description', ''), ' ')
         from jsonb_array_elements(columns) as c), '') as text
       from sextant.dbt_nodes where resource_type = 'model'`,
    );
    const docs = nodes.map((n) => ({ name: n.name as string, words: new Set([...tokens(n.name.replace(/_/g, " ")), ...tokens(n.text)]) }));
    const naive = questions.map((q) => {
      const words = new Set(tokens(q.question));
      return docs
        .map((d) => ({ name: d.name, score: [...words].filter((w) => d.words.has(w)).length }))
        .filter((d) => d.score > 0)
        .sort((a, b) => b.score - a.score || a.name.localeCompare(b.name))
        .slice(0, 10)
        .map((d) => d.name);
    });
    return { ours, naive };
  });
}

function report(label: string, questions: EvalQuestion[], ours: string[][], naive: string[][]) {
  if (process.env.SEXTANT_EVAL_VERBOSE) {
    questions.forEach((q, i) => {
      const rank = ours[i]!.findIndex((name) => q.answers.includes(name));
      console.log(`${rank < 0 ? "miss" : `#${rank + 1}`.padEnd(4)} ${q.hard ? "hard" : "    "} ${q.question} → ${ours[i]!.slice(0, 3).join(", ")}`);
    });
  }
  const hardIdx = questions.map((q, i) => (q.hard ? i : -1)).filter((i) => i >= 0);
  const hardQs = hardIdx.map((i) => questions[i]!);
  const result = {
    hardCount: hardQs.length,
    sextant: { all: score(ours, questions), hard: score(hardIdx.map((i) => ours[i]!), hardQs) },
    naive: { all: score(naive, questions), hard: score(hardIdx.map((i) => naive[i]!), hardQs) },
  };
  const f = (n: number) => n.toFixed(2);
  console.log(
    [
      `search evaluation on Tuva (${label}): ${questions.length} questions, ${hardQs.length} hard`,
      "| ranker | recall@5 all | MRR@10 all | recall@5 hard | MRR@10 hard |",
      `| search_dbt_models | ${f(result.sextant.all.recall5)} | ${f(result.sextant.all.mrr10)} | ${f(result.sextant.hard.recall5)} | ${f(result.sextant.hard.mrr10)} |`,
      `| naive token overlap | ${f(result.naive.all.recall5)} | ${f(result.naive.all.mrr10)} | ${f(result.naive.hard.recall5)} | ${f(result.naive.hard.mrr10)} |`,
    ].join("\n"),
  );
  return result;
}

test("search_dbt_models beats a naive token-overlap ranker on the Tuva evaluation", async () => {
  const { ours, naive } = await rankAll(tuvaQuestions);
  const result = report("tuning set", tuvaQuestions, ours, naive);
  expect(tuvaQuestions.length).toBeGreaterThanOrEqual(40);
  expect(result.hardCount).toBeGreaterThanOrEqual(Math.ceil(tuvaQuestions.length / 3));
  expect(result.sextant.all.recall5).toBeGreaterThanOrEqual(result.naive.all.recall5);
  expect(result.sextant.all.mrr10).toBeGreaterThanOrEqual(result.naive.all.mrr10);
  // Floors at what search reaches now (0.80 / 0.43; one question of slack overall), so that a regression fails; the issue's
  // targets (0.90 / 0.75) are not met yet.
  expect(result.sextant.all.recall5).toBeGreaterThanOrEqual(0.78);
  expect(result.sextant.hard.recall5).toBeGreaterThanOrEqual(0.4);
});

test("held-out questions: search_dbt_models beats the naive ranker there too", async () => {
  const { ours, naive } = await rankAll(tuvaHeldOut);
  const result = report("held out", tuvaHeldOut, ours, naive);
  expect(result.sextant.all.recall5).toBeGreaterThanOrEqual(result.naive.all.recall5);
  expect(result.sextant.hard.recall5).toBeGreaterThanOrEqual(result.naive.hard.recall5);
});

if (evalEmbedder) {
  test("with an embeddings endpoint (SEXTANT_EVAL_EMBEDDINGS_URL): the blend on both sets", async () => {
    const { rows: [p] } = await db.admin.query("select id from sextant.dbt_projects where tenant_slug = 'acme'");
    const client = new pg.Client({ connectionString: db.adminUrl });
    await client.connect();
    try {
      expect(await embedDbtProject(client, evalEmbedder!, p.id)).toBeGreaterThan(300);
    } finally {
      await client.end();
    }
    for (const [label, questions] of [["tuning set, with vectors", tuvaQuestions], ["held out, with vectors", tuvaHeldOut]] as const) {
      const { ours, naive } = await rankAll(questions, await evalEmbedder!.embed(questions.map((q) => q.question)));
      report(label, questions, ours, naive);
    }
  }, 600_000);
}

test("related words from the thesaurus: a synonym finds the model, and the reason says so; the thesaurus itself is not readable", async () => {
  await withTx(db.auth, async (client) => {
    await asRole(client, "sextant_t_acme");
    const { rows } = await client.query("select name, matched_fields from sextant.search_dbt_models('drugstore', 5)");
    expect(rows.map((r) => r.name)).toContain("core__pharmacy_claim");
    expect(rows.find((r) => r.name === "core__pharmacy_claim")!.matched_fields).toContain("related words");
    await client.query("savepoint s");
    await expect(client.query("select count(*) from sextant_exec.thesaurus")).rejects.toMatchObject({ code: "42501" });
    await client.query("rollback to savepoint s");
  });
});
