import type pg from "pg";
import type { Principal } from "../auth/principal.ts";
import { SextantError } from "../db/errors.ts";
import { queryAsRole } from "../db/queryAsRole.ts";
import type { AnswerDetails } from "./answer.ts";
import type { ChatMessage } from "./llm/types.ts";

/** Earlier turns fed back to the model when a conversation is resumed. */
const HISTORY_MESSAGES = 20;
const HISTORY_CHARS_EACH = 4000;

/**
 * The earlier turns of a conversation the person may continue: read as the person (RLS: their
 * own or a shared one), and continued only by its owner (SX403 otherwise; SX404 when it is not
 * visible at all).
 */
export async function loadHistory(pool: pg.Pool, principal: Principal, conversationId: string): Promise<ChatMessage[]> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(conversationId)) {
    throw new SextantError("SX400", "conversation_id must be a UUID");
  }
  const [conversation] = await queryAsRole(pool, principal,
    "select c.owner = sextant.current_person() as mine from sextant.ask_conversations as c where c.id = $1", [conversationId]);
  if (!conversation) throw new SextantError("SX404", `conversation ${conversationId} does not exist or is not shared with you`);
  if (!conversation.mine) {
    throw new SextantError("SX403", `conversation ${conversationId} is someone else's; you can read it but not continue it`, "Ask a new question (leave out conversation_id).");
  }
  const rows = await queryAsRole(pool, principal,
    "select kind, body, details from (select * from sextant.ask_messages where conversation_id = $1 order by id desc limit $2) as m order by id", [conversationId, HISTORY_MESSAGES]);
  const history: ChatMessage[] = [];
  for (const row of rows) {
    let text = String(row.body).slice(0, HISTORY_CHARS_EACH);
    const details = row.details as Partial<AnswerDetails>;
    if (row.kind === "answer" && details.sql?.length) text += `\n\n(SQL I ran: ${details.sql.map((q) => q.sql).join(" ; ").slice(0, 2000)})`;
    if (row.kind === "stopped") text = `(I was stopped: ${text})`;
    const role = row.kind === "question" ? "user" : "assistant";
    const last = history.at(-1);
    // Providers want turns to alternate; two of a kind in a row (an answer that never came) are merged.
    if (last && last.role === role) (last as { text: string }).text += `\n\n${text}`;
    else history.push(role === "user" ? { role, text } : { role, text, toolCalls: [] });
  }
  if (history[0]?.role === "assistant") history.shift();
  return history;
}

/** Starts a conversation for the person (the server records; tenant roles cannot write messages). */
export async function startConversation(pool: pg.Pool, principal: Principal, title: string, channel: "console" | "slack"): Promise<string> {
  const { rows } = await pool.query("select sextant_private.start_ask_conversation($1, $2, $3, $4) as id", [principal.tenant, principal.subject, title.slice(0, 200), channel]);
  return rows[0].id as string;
}

export async function recordMessage(pool: pg.Pool, principal: Principal, conversationId: string, kind: "question" | "answer" | "stopped", body: string, details: object = {}): Promise<void> {
  await pool.query("select sextant_private.record_ask_message($1, $2, $3, $4, $5, $6::jsonb)",
    [conversationId, principal.tenant, principal.subject, kind, body, JSON.stringify(details)]);
}
