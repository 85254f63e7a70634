import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { OperationGate } from "../audit/operation.ts";
import type { Principal } from "../auth/principal.ts";
import { SextantError, toPublicError } from "../db/errors.ts";
import type { ToolDeps } from "../mcp/registerTools.ts";
import { loadHistory, recordMessage, startConversation } from "./conversations.ts";
import type { Llm } from "./llm/types.ts";
import { runAskLoop, type AskEvent } from "./loop.ts";
import { noLlm, type AskBudgets } from "./settings.ts";
import { askTools } from "./tools.ts";

export interface AskService {
  llm?: Llm;
  budgets: AskBudgets;
  pool: pg.Pool;
  gate: OperationGate;
  /** The MCP tool dependencies (pool, gate, embedder, logError): the answering loop's only way to data. */
  toolDeps: ToolDeps;
  logError: (id: string, error: unknown) => void;
}

export const MAX_QUESTION_CHARS = 4000;

/** The question's text, or SX400 (empty, too long, or holding a NUL). */
export function checkQuestion(question: unknown): string {
  if (typeof question !== "string" || question.trim() === "") throw new SextantError("SX400", "question must be a non-empty string");
  if (question.length > MAX_QUESTION_CHARS) throw new SextantError("SX413", `question is ${question.length} characters long; at most ${MAX_QUESTION_CHARS} are allowed`);
  if (question.includes("\u0000")) throw new SextantError("SX400", "question must not contain NUL characters (U+0000)");
  return question.trim();
}

/**
 * Checks, counts and opens a question before anything streams: SX errors here are answered as
 * plain HTTP errors (or a Slack refusal). Returns the conversation it goes into.
 */
export async function admitQuestion(s: AskService, principal: Principal, question: string, conversationId: string | null | undefined,
  channel: "console" | "slack"): Promise<{ question: string; conversationId: string; history: Awaited<ReturnType<typeof loadHistory>> }> {
  const started = performance.now();
  try {
    if (!s.llm) throw noLlm();
    const history = conversationId ? await loadHistory(s.pool, principal, conversationId) : [];
    await s.gate.admit(principal);
    await s.pool.query("select sextant_private.ask_admit($1, $2, $3)", [principal.tenant, s.budgets.tenantQuestionsPerDay, s.budgets.tenantTokensPerDay]);
    return { question, conversationId: conversationId ?? (await startConversation(s.pool, principal, question, channel)), history };
  } catch (error) {
    s.gate.record(principal, { tool: "ask" }, { started, failure: toPublicError(error, s.logError) });
    throw error;
  }
}

/**
 * Answers an admitted question as `principal`, streaming its steps to `emit`; records the
 * question and the answer (or why it stopped) in the conversation, and audits the question as
 * one `ask` operation (each tool call is audited on its own, as in MCP).
 */
export async function answer(s: AskService, principal: Principal, q: { question: string; conversationId: string; history: Awaited<ReturnType<typeof loadHistory>> },
  emit: (e: AskEvent) => void, signal: AbortSignal): Promise<Extract<AskEvent, { type: "answer" | "stopped" }>> {
  const started = performance.now();
  const requestId = randomUUID();
  let final: Extract<AskEvent, { type: "answer" | "stopped" }> | undefined;
  try {
    await recordMessage(s.pool, principal, q.conversationId, "question", q.question);
    final = await runAskLoop({
      llm: s.llm!, tools: askTools(s.toolDeps, principal), budgets: s.budgets, history: q.history, question: q.question,
      mayLearn: principal.accessLevel !== "viewer", emit, signal, logError: s.logError,
      spendTokens: async (n) => Number((await s.pool.query("select sextant_private.ask_add_tokens($1, $2) as total", [principal.tenant, n])).rows[0].total),
    });
    const stopped = final.type === "stopped" ? final : undefined;
    const body = stopped ? `${stopped.message}${stopped.hint ? ` (${stopped.hint})` : ""}` : (final as { text: string }).text;
    await recordMessage(s.pool, principal, q.conversationId, stopped ? "stopped" : "answer", body, { ...final.details, tokens: final.tokens, steps: final.steps });
    return final;
  } catch (error) {
    const pub = toPublicError(error, s.logError);
    final = { type: "stopped", code: pub.code, message: pub.message, ...(pub.hint ? { hint: pub.hint } : {}), details: { sql: [], models: [] }, tokens: 0, steps: 0 };
    return final;
  } finally {
    const f = final?.type === "stopped" ? final : undefined;
    s.gate.record(principal, { tool: "ask", requestId }, {
      started,
      ...(f ? { failure: { code: f.code, message: f.message, status: f.code === "internal" ? 500 : f.code === "SX502" ? 502 : 400 } } : {}),
    });
  }
}
