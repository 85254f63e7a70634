import type { LlmSettings } from "../settings.ts";
import { wireClient } from "./http.ts";
import { parseArguments, tokenCount } from "./parse.ts";
import type { ChatMessage, Llm } from "./types.ts";

function toWire(system: string, messages: ChatMessage[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [{ role: "system", content: system }];
  for (const m of messages) {
    if (m.role === "user") out.push({ role: "user", content: m.text });
    else if (m.role === "assistant") {
      out.push({
        role: "assistant",
        content: m.text || null,
        ...(m.toolCalls.length
          ? { tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: JSON.stringify(c.arguments) } })) }
          : {}),
      });
    } else for (const r of m.results) out.push({ role: "tool", tool_call_id: r.id, content: r.isError ? `ERROR: ${r.text}` : r.text });
  }
  return out;
}

/** Any OpenAI-compatible chat-completions endpoint with tool calling (OpenAI, vLLM, Ollama, LiteLLM, …). */
export function openaiClient(s: LlmSettings): Llm {
  const headers: Record<string, string> = {};
  if (s.apiKey) headers.authorization = `Bearer ${s.apiKey}`;
  // OpenAI's own API wants max_completion_tokens (reasoning models refuse max_tokens); most
  // compatible servers know only max_tokens.
  const limitKey = new URL(s.url).hostname === "api.openai.com" ? "max_completion_tokens" : "max_tokens";
  return wireClient(s, {
    provider: "openai",
    headers,
    body: (req) => ({
      model: s.model,
      [limitKey]: s.maxOutputTokens,
      messages: toWire(req.system, req.messages),
      tools: req.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.parameters } })),
    }),
    isAnswer: (a) => Array.isArray(a.choices) && typeof (a.choices as { message?: unknown }[])[0]?.message === "object",
    read(answer) {
      const message = (answer.choices as { message: Record<string, unknown> }[])[0]!.message;
      const calls = Array.isArray(message.tool_calls) ? (message.tool_calls as Record<string, unknown>[]) : [];
      const toolCalls = calls.map((c, i) => {
        const fn = (c?.function ?? {}) as Record<string, unknown>;
        return parseArguments(c?.id, fn.name, fn.arguments, i);
      });
      const usage = (answer.usage ?? {}) as Record<string, unknown>;
      return {
        text: typeof message.content === "string" ? message.content : "",
        toolCalls,
        usage: { inputTokens: tokenCount(usage.prompt_tokens), outputTokens: tokenCount(usage.completion_tokens) },
      };
    },
  });
}
