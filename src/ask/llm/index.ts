import type { LlmSettings } from "../settings.ts";
import { anthropicClient } from "./anthropic.ts";
import { openaiClient } from "./openai.ts";
import type { Llm } from "./types.ts";

/** The configured model's client, or undefined when no SEXTANT_LLM_URL is set (nothing is called then). */
export function createLlm(settings: LlmSettings | undefined): Llm | undefined {
  if (!settings) return undefined;
  return settings.provider === "anthropic" ? anthropicClient(settings) : openaiClient(settings);
}
export type { Llm } from "./types.ts";
