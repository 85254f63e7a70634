import fs from "node:fs";
import path from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { projectRoot } from "../src/db/paths.ts";
import { createEmbedder, embedDbtProject } from "../src/dbt/embeddings.ts";
import { loadDbtArtifacts } from "../src/dbt/loadArtifacts.ts";
import { runCli } from "./helpers/cli.ts";
import { asRole, createToken, withTx } from "./helpers/db.ts";
import { startEmbeddingServer } from "./helpers/embeddingServer.ts";
import { callOk, connectHttp } from "./helpers/mcpClient.ts";
import { useResource, useServer, useTestServer } from "./helpers/setup.ts";

// The optional embeddings endpoint (SEXTANT_EMBEDDINGS_URL): vectors stored at load time, the
// question's vector blended into search_dbt_models. The endpoint is a real HTTP server whose
// stand-in model knows only the synonyms given here ("painkiller" means "opioid"), so a hit it
// brings is one the words alone do not find.
const TUVA = path.resolve(projectRoot, "test/fixtures/dbt/tuva");
const OUD = "chronic_conditions__cms_chronic_conditions_oud";
const QUESTION = "addiction to painkillers";

// The file's database, and a server without embeddings; the one with them starts below, once
// the embedding endpoint has its URL.
const { db, server: wordsOnly } = useTestServer();
const endpoint = useResource("the embedding endpoint", () => startEmbeddingServer({ synonyms: { painkiller: "opioid", addiction: "disorder" } }), (e) => e.close());
const withVectors = useServer(db, async () => ({ SEXTANT_EMBEDDINGS_URL: endpoint.url, SEXTANT_EMBEDDINGS_MODEL: "test-hash" }));
let acme: Client;
let acmeWordsOnly: Client;

async function loadTuva(tenant: string, url: string) {
  const client = new pg.Client({ connectionString: db.adminUrl });
  await client.connect();
  try {
    return await loadDbtArtifacts(client, { tenant, dir: TUVA, embedder: createEmbedder({ url, model: "test-hash", apiKey: "sk-test" }) });
  } finally {
    await client.end();
  }
}

const names = (r: Record<string, unknown>) => (r.rows as { name: string }[]).map((x) => x.name);

beforeAll(async () => {
  const token = await createToken(db, "acme", "embeddings-analyst");
  acme = (await connectHttp(withVectors.url, token)).client;
  acmeWordsOnly = (await connectHttp(wordsOnly.url, token)).client;
}, 120_000);
afterAll(async () => {
  await acme?.close();
  await acmeWordsOnly?.close();
});

describe("vectors at load time", () => {
  test("a load stores one unit-length vector per searchable node, sending the API key", async () => {
    const result = await loadTuva("acme", endpoint.url);
    const { rows } = await db.admin.query(
      `select p.searchable_nodes, count(e.*)::int as vectors, min(cardinality(e.embedding)) as dims,
              min((select sqrt(sum(x * x)) from unnest(e.embedding) as x)) as min_norm,
              max((select sqrt(sum(x * x)) from unnest(e.embedding) as x)) as max_norm,
              bool_and(length(e.signs) = cardinality(e.embedding)
                       and e.signs = array_to_string(array(select case when x > 0 then '1' else '0' end from unnest(e.embedding) as x), '')::varbit) as signs_ok
         from sextant.dbt_projects p join sextant.dbt_embeddings e on e.project_id = p.id
        where p.tenant_slug = 'acme' group by p.searchable_nodes`,
    );
    expect(result.embeddings).toEqual({ stored: rows[0].searchable_nodes });
    expect(rows[0].vectors).toBe(rows[0].searchable_nodes);
    expect(rows[0].dims).toBe(1024);
    expect(rows[0].min_norm).toBeCloseTo(1, 4);
    expect(rows[0].max_norm).toBeCloseTo(1, 4);
    expect(rows[0].signs_ok).toBe(true); // the first pass of search compares these
    expect(endpoint.state.lastAuth).toBe("Bearer sk-test");
  }, 120_000);

  test("vectors are stored a chunk at a time in one transaction: a failure in a later chunk keeps the earlier vectors", async () => {
    const { rows: [p] } = await db.admin.query("select id, searchable_nodes from sextant.dbt_projects where tenant_slug = 'acme'");
    const vectors = async () => (await db.admin.query("select count(*)::int as n, max(model) as model from sextant.dbt_embeddings where project_id = $1", [p.id])).rows[0];
    const client = new pg.Client({ connectionString: db.adminUrl });
    await client.connect();
    try {
      endpoint.state.failAfter = endpoint.state.requests + 3; // chunks of 100 nodes, 2 requests each: the second chunk fails
      await expect(embedDbtProject(client, createEmbedder({ url: endpoint.url, model: "other-model" })!, p.id, undefined, 100)).rejects.toThrow(/HTTP 500/);
      expect(await vectors()).toEqual({ n: p.searchable_nodes, model: "test-hash" });
      endpoint.state.failAfter = 0;
      const progress: number[] = [];
      const stored = await embedDbtProject(client, createEmbedder({ url: endpoint.url, model: "other-model" })!, p.id, (done) => progress.push(done), 100);
      expect(stored).toBe(p.searchable_nodes);
      expect(await vectors()).toEqual({ n: p.searchable_nodes, model: "other-model" });
      expect(progress.at(-1)).toBe(p.searchable_nodes);
      expect(progress.length).toBeGreaterThanOrEqual(Math.ceil(p.searchable_nodes / 64));
    } finally {
      endpoint.state.failAfter = 0;
      await client.end();
    }
    // back to the model the servers in this file use
    await loadTuva("acme", endpoint.url);
  }, 120_000);

  test("a failing endpoint leaves the project loaded and searchable by words, and says why", async () => {
    endpoint.state.failWith = 503;
    try {
      const result = await loadTuva("globex", endpoint.url);
      expect(result.embeddings).toMatchObject({ error: expect.stringContaining("HTTP 503") });
      const { rows } = await db.admin.query(
        `select (select count(*)::int from sextant.dbt_nodes n join sextant.dbt_projects p on p.id = n.project_id where p.tenant_slug = 'globex') as nodes,
                (select count(*)::int from sextant.dbt_embeddings where tenant_slug = 'globex') as vectors`,
      );
      expect(rows[0].nodes).toBeGreaterThan(300);
      expect(rows[0].vectors).toBe(0);
    } finally {
      endpoint.state.failWith = 0;
    }
  }, 120_000);

  test("an endpoint that cannot be reached: the load still lands, with the reason", async () => {
    const result = await loadTuva("globex", "http://127.0.0.1:9/v1/embeddings");
    expect(result.embeddings).toMatchObject({ error: expect.stringContaining("did not answer") });
  }, 120_000);

  test.each([
    ["too-few", /did not return one vector of numbers per text/],
    ["strings", /did not return one vector of numbers per text/],
    ["not-json", /did not return one vector of numbers per text/],
    ["huge", /1 to 4,096 numbers, got 5000/],
  ] as const)("an endpoint answering %s: the load lands without vectors, with the reason", async (garbage, reason) => {
    endpoint.state.garbage = garbage;
    try {
      const result = await loadTuva("globex", endpoint.url);
      expect(result.embeddings).toMatchObject({ error: expect.stringMatching(reason) });
      expect((await db.admin.query("select count(*)::int as n from sextant.dbt_embeddings where tenant_slug = 'globex'")).rows[0].n).toBe(0);
    } finally {
      endpoint.state.garbage = undefined;
    }
  }, 120_000);

  test("the CLI embeds after loading, and warns (exit 0) when the endpoint fails", async () => {
    const env = { DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn", SEXTANT_EMBEDDINGS_URL: endpoint.url, SEXTANT_EMBEDDINGS_MODEL: "test-hash" };
    const ok = await runCli(["dbt", "load", "--tenant", "demo", TUVA], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/embedded \d+ nodes with test-hash/);
    endpoint.state.failWith = 500;
    try {
      const failed = await runCli(["dbt", "load", "--tenant", "demo", TUVA], env);
      expect(failed.code).toBe(0);
      expect(failed.stdout).toMatch(/loaded dbt project the_tuva_project/);
      expect(failed.stderr).toMatch(/warning: no vectors stored \(.*HTTP 500.*\); search works by words only/);
      expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack
    } finally {
      endpoint.state.failWith = 0;
    }
  }, 120_000);

  test("an HTTP upload to a server with an endpoint stores vectors too", async () => {
    const manifest = new Uint8Array(fs.readFileSync(path.resolve(projectRoot, "test/fixtures/dbt/fivetran-recurly/manifest.json")));
    const token = await createToken(db, "globex", "embeddings-admin", "admin");
    const upload = () => fetch(`${withVectors.url}/dbt/upload?project=recurly_up`, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: manifest,
    });
    const res = await upload();
    expect(res.status).toBe(200);
    const body = (await res.json()) as { project: string; embeddings: { stored: number } };
    const { rows } = await db.admin.query(
      "select count(*)::int as n from sextant.dbt_embeddings e join sextant.dbt_projects p on p.id = e.project_id where p.project_name = 'recurly_up'",
    );
    expect(body.embeddings.stored).toBeGreaterThan(40);
    expect(rows[0].n).toBe(body.embeddings.stored);
    // When the endpoint fails, the tenant admin learns that, but not the operator's endpoint address.
    endpoint.state.failWith = 503;
    try {
      const failed = await upload();
      expect(failed.status).toBe(200);
      const text = await failed.text();
      expect(JSON.parse(text).embeddings.error).toMatch(/embeddings endpoint failed .*search works by words/);
      expect(text).not.toContain("127.0.0.1");
    } finally {
      endpoint.state.failWith = 0;
    }
    // and with the endpoint back, the next upload has vectors again (the crossing test below uses them)
    const again = await upload();
    expect(((await again.json()) as { embeddings: { stored: number } }).embeddings.stored).toBe(body.embeddings.stored);
  }, 60_000);
});

describe("search blends the question's vector", () => {
  test("MCP: a synonym only the model knows brings the right model into the top 5, marked 'meaning'", async () => {
    const blended = await callOk(acme, "search_dbt_models", { query: QUESTION, max_results: 5 });
    const plain = await callOk(acmeWordsOnly, "search_dbt_models", { query: QUESTION, max_results: 5 });
    expect(names(blended)).toContain(OUD);
    expect(names(plain)).not.toContain(OUD);
    const hit = (blended.rows as { name: string; matched_fields: string[] }[]).find((r) => r.name === OUD)!;
    expect(hit.matched_fields).toContain("meaning");
  });

  test("MCP: the endpoint failing at question time → the words-only ranking, not an error", async () => {
    const plain = names(await callOk(acmeWordsOnly, "search_dbt_models", { query: QUESTION, max_results: 5 }));
    endpoint.state.failWith = 429;
    try {
      const before = endpoint.state.requests;
      const result = await acme.callTool({ name: "search_dbt_models", arguments: { query: QUESTION, max_results: 5 } });
      expect(result.isError).toBeFalsy();
      expect(endpoint.state.requests).toBe(before + 1);
      expect(names(result.structuredContent as Record<string, unknown>)).toEqual(plain);
    } finally {
      endpoint.state.failWith = 0;
    }
  });

  test("MCP: an endpoint that hangs at question time costs at most its 5 s limit, then words answer", { timeout: 20_000 }, async () => {
    const plain = names(await callOk(acmeWordsOnly, "search_dbt_models", { query: "pharmacy claims", max_results: 5 }));
    endpoint.state.delayMs = 15_000;
    try {
      const started = performance.now();
      const result = await acme.callTool({ name: "search_dbt_models", arguments: { query: "pharmacy claims", max_results: 5 } });
      expect(performance.now() - started).toBeLessThan(8000);
      expect(result.isError).toBeFalsy();
      expect(names(result.structuredContent as Record<string, unknown>)).toEqual(plain);
    } finally {
      endpoint.state.delayMs = 0;
    }
  });

  test("GraphQL takes the vector as questionEmbedding (same SQL function)", async () => {
    const vector = endpoint.embed(QUESTION);
    const res = await fetch(`${wordsOnly.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await createToken(db, "acme", "embeddings-gql")}` },
      body: JSON.stringify({
        query: "query ($v: [Float]) { searchDbtModels(query: \"addiction to painkillers\", maxResults: 5, questionEmbedding: $v) { nodes { name matchedFields } } }",
        variables: { v: vector },
      }),
    });
    const body = (await res.json()) as { data?: any; errors?: unknown };
    expect(body.errors).toBeUndefined();
    const hit = body.data.searchDbtModels.nodes.find((n: { name: string }) => n.name === OUD);
    expect(hit.matchedFields).toContain("meaning");
  });

  test("another tenant sees none of acme's vectors, and acme's vector finds nothing of acme's there", async () => {
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      expect((await client.query("select count(*)::int as n from sextant.dbt_embeddings")).rows[0].n).toBeGreaterThan(300);
    });
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_globex");
      expect((await client.query("select count(*)::int as n from sextant.dbt_embeddings where tenant_slug = 'acme'")).rows[0].n).toBe(0);
      const { rows } = await client.query("select distinct project_name, matched_fields from sextant.search_dbt_models($1, 20, $2)", [QUESTION, endpoint.embed(QUESTION)]);
      // globex's Tuva has no vectors (its load's endpoint failed) and acme's are not visible: the
      // only 'meaning' hits come from globex's own uploaded Recurly project
      expect(rows.length).toBeGreaterThan(0);
      const meaning = rows.filter((r) => r.matched_fields.includes("meaning"));
      expect(meaning.length).toBeGreaterThan(0);
      expect(meaning.every((r) => r.project_name === "recurly_up")).toBe(true);
      expect(rows.some((r) => r.project_name === "the_tuva_project" && r.matched_fields.includes("meaning"))).toBe(false);
      const acmeProjects = await client.query("select count(*)::int as n from sextant.dbt_projects where tenant_slug = 'acme'");
      expect(acmeProjects.rows[0].n).toBe(0);
    });
  });

  test("SQL door: a vector is compared only with vectors of the model it names", async () => {
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      const meaning = async (model: string | null) =>
        (await client.query("select name from sextant.search_dbt_models($1, 10, $2, $3) where 'meaning' = any(matched_fields)", [QUESTION, endpoint.embed(QUESTION), model])).rows.map((r) => r.name);
      expect(await meaning("test-hash")).toContain(OUD);
      expect(await meaning(null)).toContain(OUD);
      expect(await meaning("text-embedding-3-small")).toEqual([]);
    });
  });

  test("hostile vectors at the SQL door are refused with SX400; another model's length is ignored", async () => {
    const bad: [string, string][] = [
      ["NaN", "array['NaN'::real, 1]"],
      ["infinity", "array['Infinity'::real, 1]"],
      ["all zeros", "array_fill(0::real, array[1024])"],
      ["too long", "array_fill(1::real, array[5000])"],
      ["two-dimensional", "array[[1::real, 2], [3, 4]]"],
      ["empty", "'{}'::real[]"],
    ];
    for (const [label, vector] of bad) {
      await withTx(db.auth, async (client) => {
        await asRole(client, "sextant_t_acme");
        await expect(client.query(`select * from sextant.search_dbt_models('opioid', 5, ${vector})`), label).rejects.toMatchObject({ code: "SX400" });
      });
    }
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme");
      const plain = (await client.query("select name from sextant.search_dbt_models('opioid use disorder', 5)")).rows.map((r) => r.name);
      const short = (await client.query("select name, matched_fields from sextant.search_dbt_models('opioid use disorder', 5, array[1::real, 2, 3])")).rows;
      expect(short.map((r) => r.name)).toEqual(plain);
      expect(short.every((r) => !r.matched_fields.includes("meaning"))).toBe(true);
    });
  });
});
