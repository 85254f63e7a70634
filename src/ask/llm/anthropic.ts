import type { LlmSettings } from "../settings.ts";
import { wireClient } from "./http.ts";
import { parseArguments, tokenCount } from "./parse.ts";
import type { ChatMessage, Llm, ToolCall } from "./types.ts";

type Block =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; tool_use_id: string; content: string; is_error?: boolean };

function toWire(messages: ChatMessage[]): { role: "user" | "assistant"; content: Block[] }[] {
  return messages.map((m) => {
    if (m.role === "user") return { role: "user", content: [{ type: "text", text: m.text }] };
    if (m.role === "assistant") {
      const content: Block[] = m.text ? [{ type: "text", text: m.text }] : [];
      for (const c of m.toolCalls) content.push({ type: "tool_use", id: c.id, name: c.name, input: c.arguments });
      return { role: "assistant", content };
    }
    return { role: "user", content: m.results.map((r) => ({ type: "tool_result", tool_use_id: r.id, content: r.text, is_error: r.isError })) };
  });
}

/** The Anthropic Messages API (POST /v1/messages, tool_use blocks). */
export function anthropicClient(s: LlmSettings): Llm {
  const headers: Record<string, string> = { "anthropic-version": "2023-06-01" };
  if (s.apiKey) headers["x-api-key"] = s.apiKey;
  return wireClient(s, {
    provider: "anthropic",
    headers,
    body: (req) => ({
      model: s.model,
      max_tokens: s.maxOutputTokens,
      system: req.system,
      messages: toWire(req.messages),
      tools: req.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters })),
    }),
    isAnswer: (a) => Array.isArray(a.content),
    read(answer) {
      const blocks = answer.content as Record<string, unknown>[];
      const text = blocks.filter((b) => b?.type === "text" && typeof b.text === "string").map((b) => b.text as string).join("\n");
      const toolCalls: ToolCall[] = blocks.filter((b) => b?.type === "tool_use").map((b, i) => parseArguments(b.id, b.name, b.input, i));
      const usage = (answer.usage ?? {}) as Record<string, unknown>;
      return { text, toolCalls, usage: { inputTokens: tokenCount(usage.input_tokens), outputTokens: tokenCount(usage.output_tokens) } };
    },
  });
}
