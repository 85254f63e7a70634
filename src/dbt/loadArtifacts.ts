import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createGunzip } from "node:zlib";
import type pg from "pg";
import chain from "stream-chain";
import { parser } from "stream-json";
import { pick } from "stream-json/filters/pick.js";
import { streamValues } from "stream-json/streamers/stream-values.js";
import { SextantError } from "../db/errors.ts";
import { embedDbtProject, type Embedder } from "./embeddings.ts";
import { DEFAULT_UPLOAD_LIMITS, ExpansionBudget, type UploadLimits } from "./uploadLimits.ts";
import { inTransaction } from "../db/transaction.ts";

const BATCH = 500;
const MANIFEST_SECTIONS = new Set(["nodes", "sources", "exposures", "metrics", "semantic_models", "saved_queries"]);

/** Where a load is: bytes read of all files so far, and their total size. */
export type Progress = (read: number, total: number) => void;

/** One artifact file, plain or gzipped, if present in `dir`. */
function findArtifact(dir: string, name: string): string | undefined {
  for (const candidate of [name, `${name}.gz`]) {
    const file = path.join(dir, candidate);
    if (fs.existsSync(file)) return file;
  }
  return undefined;
}

/**
 * Streams the values selected by `select` (a path of keys from the root) out of a JSON file
 * without holding the file in memory; `onBytes` sees every chunk read. The JSON bytes (after
 * gunzip) pass `budget`, which stops the stream with SX413 at the limit.
 */
async function* streamJson(
  file: string,
  select: (stack: readonly (string | number | null)[]) => boolean,
  onBytes: (n: number) => void,
  budget: ExpansionBudget,
) {
  const input = fs.createReadStream(file);
  input.on("data", (chunk) => onBytes(chunk.length));
  const steps: unknown[] = [input];
  if (file.endsWith(".gz")) {
    const compressed = ExpansionBudget.inputCounter();
    steps.push(compressed.stream, createGunzip(), budget.meter(compressed.bytes));
  } else {
    steps.push(budget.meter());
  }
  steps.push(parser(), pick({ filter: (stack) => select(stack) }), streamValues());
  const pipeline = chain(steps as never) as unknown as AsyncIterable<{ value: Record<string, unknown> }>;
  for await (const { value } of pipeline) yield value;
}

/**
 * Loads a dbt target directory (manifest.json, and catalog.json / run_results.json when
 * present; each may be gzipped) for a tenant. Everything happens in one transaction on
 * `client`: items are streamed to PostgreSQL in batches, then sextant_private.finish_dbt_load
 * replaces the tenant's previous version of the project. A failure rolls back and changes
 * nothing.
 */
export async function loadDbtArtifacts(
  client: pg.ClientBase,
  opts: {
    tenant: string;
    dir: string;
    project?: string;
    onProgress?: Progress;
    embedder?: Embedder;
    onEmbedProgress?: Progress;
    /** Bounds the JSON read after decompression (all files together); default DEFAULT_UPLOAD_LIMITS. */
    limits?: UploadLimits;
  },
): Promise<{ project: string; counts: Record<string, number>; ms: number; embeddings?: { stored: number } | { error: string } }> {
  const started = performance.now();
  const manifest = findArtifact(opts.dir, "manifest.json");
  if (!manifest) {
    throw new SextantError("SX404", `no manifest.json in ${opts.dir}`, "Point at a dbt target directory (run `dbt docs generate` or `dbt compile` first).");
  }
  const catalog = findArtifact(opts.dir, "catalog.json");
  const runResults = findArtifact(opts.dir, "run_results.json");
  const files = [manifest, catalog, runResults].filter((f): f is string => Boolean(f));
  const total = files.reduce((sum, f) => sum + fs.statSync(f).size, 0);
  let read = 0;
  const onBytes = (n: number) => {
    read += n;
    opts.onProgress?.(read, total);
  };

  const budget = new ExpansionBudget(opts.limits ?? DEFAULT_UPLOAD_LIMITS);

  const loadId = randomUUID();
  const counts: Record<string, number> = {};
  let batch: unknown[] = [];
  let batchKind = "";
  const flush = async () => {
    if (batch.length === 0) return;
    await client.query("select sextant_private.stage_dbt_items($1, $2, $3::json)", [loadId, batchKind, JSON.stringify(batch)]);
    batch = [];
  };
  const add = async (kind: string, item: unknown) => {
    if (kind !== batchKind) await flush();
    batchKind = kind;
    batch.push(item);
    counts[kind] = (counts[kind] ?? 0) + 1;
    if (batch.length >= BATCH) await flush();
  };

  let loaded: { project_name: string; id: string };
  try {
    loaded = await inTransaction(client, async () => {
      const inManifest = (s: readonly (string | number | null)[]) =>
        (s.length === 1 && s[0] === "metadata") || (s.length === 2 && MANIFEST_SECTIONS.has(String(s[0])));
      for await (const value of streamJson(manifest, inManifest, onBytes, budget)) {
        await add("dbt_schema_version" in value ? "metadata" : "node", value);
      }
      if (catalog) {
        const inCatalog = (s: readonly (string | number | null)[]) => s.length === 2 && (s[0] === "nodes" || s[0] === "sources");
        for await (const value of streamJson(catalog, inCatalog, onBytes, budget)) await add("catalog_node", value);
      }
      if (runResults) {
        const inResults = (s: readonly (string | number | null)[]) => s.length === 2 && s[0] === "results";
        for await (const value of streamJson(runResults, inResults, onBytes, budget)) await add("run_result", value);
      }
      await flush();
      const { rows } = await client.query("select * from sextant_private.finish_dbt_load($1, $2, $3, $4)", [
        opts.tenant,
        loadId,
        opts.project ?? null,
        `directory ${path.resolve(opts.dir)}`,
      ]);
      return rows[0];
    });
  } catch (error) {
    if (error instanceof SyntaxError || /JSON|Parser/i.test(String((error as Error).message)) && !(error as { code?: string }).code) {
      throw new SextantError("SX400", `an artifact is not valid JSON: ${(error as Error).message}`, "Regenerate the artifacts with dbt.");
    }
    if (/^Z_/.test(String((error as { code?: string }).code))) {
      throw new SextantError("SX400", `an artifact is not valid gzip: ${(error as Error).message}`, "Send the files gzipped whole, or not at all.");
    }
    throw error;
  }
  const ms = Math.round(performance.now() - started);
  const embeddings = opts.embedder ? await embedAfterLoad(client, opts.embedder, loaded.id, opts.onEmbedProgress) : undefined;
  return { project: loaded.project_name, counts, ms, ...(embeddings && { embeddings }) };
}

/** Vectors for the new project; a failing endpoint leaves it loaded and searchable by words. */
async function embedAfterLoad(client: pg.ClientBase, embedder: Embedder, projectId: string, onProgress?: Progress) {
  try {
    return { stored: await embedDbtProject(client, embedder, projectId, onProgress) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
