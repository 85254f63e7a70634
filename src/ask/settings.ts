import { SextantError } from "../db/errors.ts";

/** The team's LLM endpoint (nothing is called unless SEXTANT_LLM_URL is set). */
export interface LlmSettings {
  provider: "anthropic" | "openai";
  /** The endpoint itself: …/v1/messages (Anthropic) or …/chat/completions (OpenAI-compatible). */
  url: string;
  model: string;
  apiKey?: string;
  /** Per request to the model; retried requests get a fresh timeout within the question's time. */
  timeoutMs: number;
  /** The most a response may weigh; a larger one is refused, not read. */
  maxResponseBytes: number;
  /** Retries of a request that failed on the network, with 408/409/429 or 5xx. */
  retries: number;
  /** max_tokens of each model turn. */
  maxOutputTokens: number;
}

/** Per question and per tenant (daily, in PostgreSQL) bounds of the answering loop. */
export interface AskBudgets {
  maxSteps: number;
  maxToolCalls: number;
  maxTokens: number;
  maxSeconds: number;
  tenantQuestionsPerDay: number;
  tenantTokensPerDay: number;
}

export interface SlackSettings {
  signingSecret: string;
  botToken?: string;
  /** Slack's Web API base (tests point it at a stand-in); response_url may go to slack.com hosts or this host only. */
  apiBase: string;
}

export interface AskSettings {
  llm?: LlmSettings;
  budgets: AskBudgets;
  slack?: SlackSettings;
}

function whole(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  return n;
}

/** The endpoint URL for a provider: a base such as https://api.openai.com/v1 gets the path appended. */
export function endpointUrl(provider: LlmSettings["provider"], raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`SEXTANT_LLM_URL must be an http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`SEXTANT_LLM_URL must be an http(s) URL, got "${raw}"`);
  const path = url.pathname.replace(/\/+$/, "");
  if (provider === "anthropic" && !path.endsWith("/messages")) url.pathname = path.endsWith("/v1") ? `${path}/messages` : `${path}/v1/messages`;
  if (provider === "openai" && !path.endsWith("/chat/completions")) url.pathname = `${path}/chat/completions`;
  return url.toString();
}

/** Reads the ask and Slack settings from the environment (README: "Ask in plain English"). */
export function readAskSettings(env: NodeJS.ProcessEnv = process.env): AskSettings {
  let llm: LlmSettings | undefined;
  if (env.SEXTANT_LLM_URL) {
    const declared = env.SEXTANT_LLM_PROVIDER;
    if (declared && declared !== "anthropic" && declared !== "openai") {
      throw new Error(`SEXTANT_LLM_PROVIDER must be anthropic or openai, got "${declared}"`);
    }
    // The URL tells when it can: Anthropic's host or a …/messages endpoint; anything else speaks chat completions.
    const provider = (declared as LlmSettings["provider"] | undefined) ??
      (/anthropic\.com$/i.test(safeHost(env.SEXTANT_LLM_URL)) || /\/messages\/?$/.test(env.SEXTANT_LLM_URL) ? "anthropic" : "openai");
    if (!env.SEXTANT_LLM_MODEL) throw new Error("SEXTANT_LLM_MODEL must be set with SEXTANT_LLM_URL (e.g. claude-sonnet-4-5 or gpt-4.1)");
    llm = {
      provider,
      url: endpointUrl(provider, env.SEXTANT_LLM_URL),
      model: env.SEXTANT_LLM_MODEL,
      apiKey: env.SEXTANT_LLM_API_KEY || undefined,
      timeoutMs: whole(env, "SEXTANT_LLM_TIMEOUT_MS", 60_000, 100, 600_000),
      maxResponseBytes: whole(env, "SEXTANT_LLM_MAX_RESPONSE_BYTES", 2_000_000, 1000, 50_000_000),
      retries: whole(env, "SEXTANT_LLM_RETRIES", 2, 0, 5),
      maxOutputTokens: whole(env, "SEXTANT_LLM_MAX_OUTPUT_TOKENS", 4096, 64, 64_000),
    };
  }
  const budgets: AskBudgets = {
    maxSteps: whole(env, "SEXTANT_ASK_MAX_STEPS", 12, 1, 100),
    maxToolCalls: whole(env, "SEXTANT_ASK_MAX_TOOL_CALLS", 20, 0, 200),
    maxTokens: whole(env, "SEXTANT_ASK_MAX_TOKENS", 200_000, 100, 10_000_000),
    maxSeconds: whole(env, "SEXTANT_ASK_MAX_SECONDS", 180, 1, 3600),
    tenantQuestionsPerDay: whole(env, "SEXTANT_ASK_TENANT_QUESTIONS_PER_DAY", 1000, 0, 10_000_000),
    tenantTokensPerDay: whole(env, "SEXTANT_ASK_TENANT_TOKENS_PER_DAY", 20_000_000, 0, 2_000_000_000),
  };
  const slack = env.SEXTANT_SLACK_SIGNING_SECRET
    ? {
        signingSecret: env.SEXTANT_SLACK_SIGNING_SECRET,
        botToken: env.SEXTANT_SLACK_BOT_TOKEN || undefined,
        apiBase: endpointBase(env.SEXTANT_SLACK_API_URL || "https://slack.com/api"),
      }
    : undefined;
  return { llm, budgets, slack };
}

function safeHost(raw: string): string {
  try {
    return new URL(raw).hostname;
  } catch {
    return "";
  }
}

function endpointBase(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.protocol === "http:" || url.protocol === "https:") return url.toString().replace(/\/+$/, "");
  } catch {}
  throw new Error(`SEXTANT_SLACK_API_URL must be an http(s) URL, got "${raw}"`);
}

/** The refusal when no model is configured. */
export function noLlm(): SextantError {
  return new SextantError("SX404", "asking in plain English is not set up on this server",
    "An operator sets SEXTANT_LLM_URL, SEXTANT_LLM_MODEL and SEXTANT_LLM_API_KEY (README: Ask in plain English).");
}
