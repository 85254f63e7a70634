import { SextantError } from "../../db/errors.ts";
import type { ToolCall } from "./types.ts";

/** The answer as an object, or SX502 when it does not have the provider's shape. */
export function requireShape(answer: unknown, url: string, ok: (a: Record<string, unknown>) => boolean): Record<string, unknown> {
  if (answer && typeof answer === "object" && !Array.isArray(answer) && ok(answer as Record<string, unknown>)) return answer as Record<string, unknown>;
  throw new SextantError("SX502", `the model endpoint at ${new URL(url).host} answered JSON of an unexpected shape`, "Check SEXTANT_LLM_PROVIDER (anthropic or openai) and SEXTANT_LLM_URL.");
}

/**
 * A tool call from the wire: arguments arrive as an object (Anthropic) or a JSON string
 * (OpenAI). Anything else is kept as a malformed call, answered to the model as an error, so
 * that it can correct itself (within its budget) instead of the question failing.
 */
export function parseArguments(id: unknown, name: unknown, raw: unknown, index: number): ToolCall {
  const callId = typeof id === "string" && id.length > 0 && id.length <= 200 ? id : `call_${index}`;
  const callName = typeof name === "string" ? name.slice(0, 100) : "";
  let args: unknown = raw;
  if (typeof raw === "string") {
    try {
      args = raw.trim() === "" ? {} : JSON.parse(raw);
    } catch {
      return { id: callId, name: callName, arguments: {}, malformed: "the arguments are not valid JSON" };
    }
  }
  if (args === undefined || args === null) args = {};
  if (typeof args !== "object" || Array.isArray(args)) return { id: callId, name: callName, arguments: {}, malformed: "the arguments must be a JSON object" };
  if (!callName) return { id: callId, name: callName, arguments: {}, malformed: "the call names no tool" };
  return { id: callId, name: callName, arguments: args as Record<string, unknown> };
}

/** A token count from the answer's usage: a non-negative finite number, else 0. */
export function tokenCount(n: unknown): number {
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : 0;
}
