import { expect, test } from "vitest";
import { readAskSettings } from "../../src/ask/settings.ts";

// Reading the settings is pure; these check the rules the README states.
test("nothing is configured unless SEXTANT_LLM_URL is set", () => {
  const s = readAskSettings({});
  expect(s.llm).toBeUndefined();
  expect(s.slack).toBeUndefined();
  expect(s.budgets).toEqual({ maxSteps: 12, maxToolCalls: 20, maxTokens: 200_000, maxSeconds: 180, tenantQuestionsPerDay: 1000, tenantTokensPerDay: 20_000_000 });
});

test.each([
  ["https://api.anthropic.com", undefined, "anthropic", "https://api.anthropic.com/v1/messages"],
  ["https://api.anthropic.com/v1", undefined, "anthropic", "https://api.anthropic.com/v1/messages"],
  ["http://gateway.local:8080/v1/messages", undefined, "anthropic", "http://gateway.local:8080/v1/messages"],
  ["https://api.openai.com/v1", undefined, "openai", "https://api.openai.com/v1/chat/completions"],
  ["http://localhost:11434/v1/chat/completions", undefined, "openai", "http://localhost:11434/v1/chat/completions"],
  ["https://llm.internal/anthropic", "anthropic", "anthropic", "https://llm.internal/anthropic/v1/messages"],
])("%s (provider %s) speaks %s at %s", (url, provider, expected, endpoint) => {
  const s = readAskSettings({ SEXTANT_LLM_URL: url, SEXTANT_LLM_MODEL: "m", ...(provider ? { SEXTANT_LLM_PROVIDER: provider } : {}) });
  expect(s.llm).toMatchObject({ provider: expected, url: endpoint, model: "m", timeoutMs: 60_000, retries: 2 });
});

test("bad settings stop the server at start with a message naming the variable", () => {
  expect(() => readAskSettings({ SEXTANT_LLM_URL: "https://x.test" })).toThrow(/SEXTANT_LLM_MODEL must be set/);
  expect(() => readAskSettings({ SEXTANT_LLM_URL: "ftp://x.test", SEXTANT_LLM_MODEL: "m" })).toThrow(/SEXTANT_LLM_URL must be an http\(s\) URL/);
  expect(() => readAskSettings({ SEXTANT_LLM_URL: "https://x.test", SEXTANT_LLM_MODEL: "m", SEXTANT_LLM_PROVIDER: "gemini" })).toThrow(/SEXTANT_LLM_PROVIDER must be anthropic or openai/);
  expect(() => readAskSettings({ SEXTANT_ASK_MAX_STEPS: "0" })).toThrow(/SEXTANT_ASK_MAX_STEPS must be a whole number from 1 to 100/);
  expect(() => readAskSettings({ SEXTANT_LLM_RETRIES: "nine" , SEXTANT_LLM_URL: "https://x.test", SEXTANT_LLM_MODEL: "m" })).toThrow(/SEXTANT_LLM_RETRIES/);
  expect(() => readAskSettings({ SEXTANT_SLACK_SIGNING_SECRET: "s", SEXTANT_SLACK_API_URL: "file:///etc/passwd" })).toThrow(/SEXTANT_SLACK_API_URL must be an http\(s\) URL/);
  expect(readAskSettings({ SEXTANT_SLACK_SIGNING_SECRET: "s" }).slack).toEqual({ signingSecret: "s", botToken: undefined, apiBase: "https://slack.com/api" });
});
