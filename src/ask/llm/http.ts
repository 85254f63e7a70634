import { SextantError } from "../../db/errors.ts";
import { readLimited } from "../../http/readLimited.ts";
import type { LlmSettings } from "../settings.ts";
import { requireShape } from "./parse.ts";
import type { Completion, CompletionRequest, Llm } from "./types.ts";

export interface PostOptions {
  timeoutMs: number;
  maxResponseBytes: number;
  retries: number;
  /** Ends waiting and retrying (the question's own deadline, or the asker went away). */
  signal: AbortSignal;
}

const RETRY_STATUS = new Set([408, 409, 429, 500, 502, 503, 504, 529]);
const MAX_BACKOFF_MS = 10_000;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

/**
 * POSTs JSON to a model endpoint and returns the parsed answer. Bounded: each attempt times
 * out, the response is read up to a byte cap, failures on the network and 408/409/429/5xx
 * are retried `retries` times with backoff (Retry-After honoured up to 10 s). Errors are
 * SX502 naming the host, never the credential.
 */
export async function postJson(url: string, headers: Record<string, string>, body: unknown, opts: PostOptions): Promise<unknown> {
  const where = new URL(url).host;
  const payload = JSON.stringify(body);
  let lastError: SextantError | undefined;
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    if (opts.signal.aborted) break;
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", ...headers },
        body: payload,
        redirect: "error",
        signal: AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]),
      });
    } catch (error) {
      if (opts.signal.aborted) break;
      const timedOut = (error as Error).name === "TimeoutError";
      lastError = new SextantError("SX502", timedOut
        ? `the model endpoint at ${where} did not answer within ${opts.timeoutMs} ms`
        : `the model endpoint at ${where} could not be reached: ${(error as Error).message}`,
        "Check SEXTANT_LLM_URL, or raise SEXTANT_LLM_TIMEOUT_MS.");
      await sleep(Math.min(MAX_BACKOFF_MS, 250 * 2 ** attempt), opts.signal).catch(() => {});
      continue;
    }
    let text: string;
    try {
      text = await readLimited(res, opts.maxResponseBytes, (declared) => new SextantError("SX502", declared
        ? `the model endpoint at ${where} answered ${declared} bytes, more than the ${opts.maxResponseBytes} allowed`
        : `the model endpoint at ${where} answered more than the ${opts.maxResponseBytes} bytes allowed`, "Raise SEXTANT_LLM_MAX_RESPONSE_BYTES if this is expected."));
    } catch (error) {
      if (error instanceof SextantError) throw error;
      if (opts.signal.aborted) break;
      lastError = new SextantError("SX502", `the model endpoint at ${where} stopped in the middle of its answer`, "Check SEXTANT_LLM_URL, or raise SEXTANT_LLM_TIMEOUT_MS.");
      continue;
    }
    if (res.ok) {
      try {
        return JSON.parse(text);
      } catch {
        throw new SextantError("SX502", `the model endpoint at ${where} answered something that is not JSON`, "Check SEXTANT_LLM_URL and SEXTANT_LLM_PROVIDER.");
      }
    }
    const snippet = text.replace(/\s+/g, " ").slice(0, 300);
    lastError = new SextantError("SX502", `the model endpoint at ${where} answered HTTP ${res.status}${snippet ? `: ${snippet}` : ""}`,
      res.status === 401 || res.status === 403 ? "Check SEXTANT_LLM_API_KEY." : "Check SEXTANT_LLM_URL, SEXTANT_LLM_MODEL and SEXTANT_LLM_PROVIDER.");
    if (!RETRY_STATUS.has(res.status)) throw lastError;
    const after = Number(res.headers.get("retry-after"));
    const wait = Number.isFinite(after) && after > 0 ? after * 1000 : 500 * 2 ** attempt;
    if (attempt < opts.retries) await sleep(Math.min(MAX_BACKOFF_MS, wait), opts.signal).catch(() => {});
  }
  if (opts.signal.aborted) throw opts.signal.reason instanceof SextantError ? opts.signal.reason : new SextantError("SX413", "the question was stopped");
  throw lastError ?? new SextantError("SX502", `the model endpoint at ${where} failed`);
}

/** What one wire format decides: its headers, the request body, the answer's shape and how to read it. */
export interface Wire {
  provider: string;
  headers: Record<string, string>;
  body(req: CompletionRequest): unknown;
  isAnswer(answer: Record<string, unknown>): boolean;
  read(answer: Record<string, unknown>): Completion;
}

/** A chat model on `s.url` speaking `wire`: each completion is one bounded postJson, its answer checked (SX502) and read. */
export function wireClient(s: LlmSettings, wire: Wire): Llm {
  return {
    provider: wire.provider,
    model: s.model,
    async complete(req: CompletionRequest): Promise<Completion> {
      const answer = await postJson(s.url, wire.headers, wire.body(req), { ...s, signal: req.signal });
      return wire.read(requireShape(answer, s.url, wire.isAnswer));
    },
  };
}
