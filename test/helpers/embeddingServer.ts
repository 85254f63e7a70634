import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

const STOP = new Set(["a", "an", "and", "the", "of", "to", "in", "on", "for", "by", "with", "is", "are", "this", "that", "as", "or"]);

/**
 * A stand-in embeddings endpoint for tests: a real HTTP server speaking the OpenAI embeddings
 * protocol. Its "model" knows no meaning beyond the synonyms a test gives it: each word is
 * lowercased, loses a plural "s", is replaced by its synonym, and adds its own pseudo-random
 * vector (seeded by the word) to the text's. So a test can tell a match found through the vectors (a synonym
 * no word of the text shares) from one found through the words.
 */
export async function startEmbeddingServer(opts: { synonyms?: Record<string, string>; dims?: number } = {}) {
  const dims = opts.dims ?? 1024;
  const synonyms = opts.synonyms ?? {};
  const state = {
    requests: 0,
    texts: 0,
    failWith: 0,
    /** Answer something malformed instead of vectors (hostile-endpoint tests). */
    garbage: undefined as undefined | "too-few" | "strings" | "huge" | "not-json",
    /** Answer HTTP 500 to every request after this many (0: never). */
    failAfter: 0,
    /** Wait this long before answering. */
    delayMs: 0,
    lastAuth: undefined as string | undefined,
  };

  // Each word's vector: `dims` pseudo-random numbers in [-1, 1) seeded by the word (dense and
  // centred like a real model's, so the signs of a text's vector carry its meaning too).
  const wordVectors = new Map<string, Float64Array>();
  const wordVector = (word: string) => {
    let v = wordVectors.get(word);
    if (!v) {
      let seed = createHash("sha1").update(word).digest().readUInt32BE(0);
      v = new Float64Array(dims);
      for (let i = 0; i < dims; i++) {
        seed = (Math.imul(seed ^ (seed >>> 15), 2246822519) + 0x9e3779b9) >>> 0; // a small PRNG step
        v[i] = seed / 2 ** 31 - 1;
      }
      wordVectors.set(word, v);
    }
    return v;
  };
  const embed = (text: string) => {
    const v = new Array<number>(dims).fill(0);
    for (const raw of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
      if (STOP.has(raw)) continue;
      const singular = raw.length > 3 && raw.endsWith("s") ? raw.slice(0, -1) : raw;
      const w = wordVector(synonyms[singular] ?? synonyms[raw] ?? singular);
      for (let i = 0; i < dims; i++) v[i]! += w[i]!;
    }
    return v;
  };

  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", async () => {
      state.requests += 1;
      state.lastAuth = req.headers.authorization;
      if (state.delayMs) await new Promise((r) => setTimeout(r, state.delayMs));
      if (state.garbage) {
        const texts = (JSON.parse(body).input as string[]) ?? [];
        const data = state.garbage === "too-few" ? [{ index: 0, embedding: embed(texts[0] ?? "") }]
          : state.garbage === "strings" ? texts.map((_, index) => ({ index, embedding: ["0.1", "0.2"] }))
          : texts.map((_, index) => ({ index, embedding: new Array(5000).fill(0.01) }));
        res.writeHead(200, { "content-type": "application/json" }).end(state.garbage === "not-json" ? "<html>gateway</html>" : JSON.stringify({ data }));
        return;
      }
      if (state.failWith || (state.failAfter && state.requests > state.failAfter)) {
        res.writeHead(state.failWith || 500, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "model overloaded" } }));
        return;
      }
      let input: unknown;
      try {
        input = JSON.parse(body).input;
      } catch {
        res.writeHead(400).end("bad json");
        return;
      }
      const texts = Array.isArray(input) ? input.map(String) : [String(input)];
      state.texts += texts.length;
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({ object: "list", data: texts.map((t, index) => ({ object: "embedding", index, embedding: embed(t) })), model: "test-hash" }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/embeddings`,
    state,
    embed,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
