import type pg from "pg";
import { SextantError } from "../db/errors.ts";
import { inTransaction } from "../db/transaction.ts";

/** An OpenAI-compatible embeddings endpoint (POST {model, input: [...]} → {data: [{embedding, index}]}). */
export interface EmbeddingsSettings {
  /** The full endpoint URL, e.g. https://api.openai.com/v1/embeddings or http://localhost:11434/v1/embeddings. */
  url: string;
  model: string;
  apiKey?: string;
}

export interface Embedder {
  readonly model: string;
  /**
   * Vectors of `texts`, in order, 64 texts a request (`onBatch` after each, with how many are
   * done); throws SX502 with the reason when the endpoint fails.
   */
  embed(texts: string[], opts?: { timeoutMs?: number; onBatch?: (done: number) => void }): Promise<number[][]>;
}

const BATCH = 64;
/** Nodes embedded and stored at a time (8 requests). */
const CHUNK = 512;

export function createEmbedder(settings: EmbeddingsSettings | undefined): Embedder | undefined {
  if (!settings) return undefined;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (settings.apiKey) headers.authorization = `Bearer ${settings.apiKey}`;
  const where = new URL(settings.url).host;
  return {
    model: settings.model,
    async embed(texts, { timeoutMs = 30_000, onBatch } = {}) {
      const out: number[][] = [];
      for (let i = 0; i < texts.length; i += BATCH) {
        const input = texts.slice(i, i + BATCH);
        let res: Response;
        try {
          res = await fetch(settings.url, {
            method: "POST",
            headers,
            body: JSON.stringify({ model: settings.model, input }),
            signal: AbortSignal.timeout(timeoutMs),
          });
        } catch (error) {
          throw new SextantError("SX502", `the embeddings endpoint at ${where} did not answer: ${(error as Error).message}`);
        }
        if (!res.ok) {
          const body = (await res.text().catch(() => "")).slice(0, 200);
          throw new SextantError("SX502", `the embeddings endpoint at ${where} answered HTTP ${res.status}${body ? `: ${body}` : ""}`,
            res.status === 401 || res.status === 403 ? "Check SEXTANT_EMBEDDINGS_API_KEY." : "Check SEXTANT_EMBEDDINGS_URL and SEXTANT_EMBEDDINGS_MODEL.");
        }
        const body = (await res.json().catch(() => null)) as { data?: { embedding?: unknown; index?: number }[] } | null;
        const data = body?.data;
        if (!Array.isArray(data) || data.length !== input.length ||
            !data.every((d) => Array.isArray(d.embedding) && d.embedding.length > 0 && d.embedding.every((x) => typeof x === "number" && Number.isFinite(x)))) {
          throw new SextantError("SX502", `the embeddings endpoint at ${where} did not return one vector of numbers per text`);
        }
        const ordered = [...data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
        out.push(...ordered.map((d) => d.embedding as number[]));
        onBatch?.(out.length);
      }
      return out;
    },
  };
}

/**
 * Embeds the searchable nodes of a project and stores the vectors, replacing the project's
 * earlier ones in one transaction, a chunk at a time (so memory stays bounded on large
 * projects). Runs after the load committed: when the endpoint fails, the project stays loaded
 * and searchable by words, with its earlier vectors gone with the old version (the caller
 * reports the error).
 */
export async function embedDbtProject(
  client: pg.ClientBase,
  embedder: Embedder,
  projectId: string,
  onProgress?: (done: number, total: number) => void,
  chunkSize = CHUNK,
): Promise<number> {
  const { rows } = await client.query("select unique_id, text from sextant_private.dbt_embedding_texts($1)", [projectId]);
  return inTransaction(client, async () => {
    let stored = 0;
    for (let i = 0; i < rows.length || i === 0; i += chunkSize) {
      const chunk = rows.slice(i, i + chunkSize);
      const vectors = await embedder.embed(chunk.map((r) => r.text as string), { onBatch: (done) => onProgress?.(i + done, rows.length) });
      const items = chunk.map((r, k) => ({ unique_id: r.unique_id, embedding: vectors[k] }));
      const res = await client.query("select sextant_private.store_dbt_embeddings($1, $2, $3::jsonb, $4) as n", [projectId, embedder.model, JSON.stringify(items), i === 0]);
      stored += res.rows[0].n as number;
    }
    return stored;
  });
}
