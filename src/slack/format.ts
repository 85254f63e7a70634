import type { AskEvent } from "../ask/loop.ts";

/** Slack's limit is 40,000 characters a message; answers are kept well under it. */
const MAX_TEXT = 3900;
const TABLE_ROWS = 10;

/**
 * Text for Slack: &, < and > become entities, so nothing the model or the data wrote can
 * become a mention (<!channel>, <@U…>) or a link Slack renders.
 */
export function slackEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A code block whose content cannot end it (backticks inside become a look-alike). */
function code(text: string): string {
  return "```" + slackEscape(text).replace(/`/g, "ˋ") + "```";
}

/** One progress line while the loop works. */
export function progressText(event: AskEvent, step: number): string | undefined {
  if (event.type === "tool_call") return `:hourglass_flowing_sand: step ${step}: ${slackEscape(event.name)}…`;
  if (event.type === "tool_result" && !event.ok) return `:hourglass_flowing_sand: step ${step}: ${slackEscape(event.name)} was refused; trying another way…`;
  return undefined;
}

/** The final answer (or why it stopped) as one Slack message: the text, the SQL it ran, the models, a few rows. */
export function finalText(final: Extract<AskEvent, { type: "answer" | "stopped" }>): string {
  const parts: string[] = [];
  if (final.type === "stopped") parts.push(`:warning: ${slackEscape(final.message)}${final.hint ? `\n_${slackEscape(final.hint)}_` : ""}`);
  else parts.push(slackEscape(final.text));
  const d = final.details;
  if (d.sql.length) parts.push(`*SQL I ran*\n${code(d.sql.map((q) => q.sql).join(";\n\n"))}`);
  if (d.models.length) parts.push(`*dbt models:* ${d.models.map(slackEscape).join(", ")}`);
  if (final.type === "answer" && d.table && d.table.rows.length > 1) {
    const names = d.table.columns.map((c) => c.name);
    const rows = d.table.rows.slice(0, TABLE_ROWS).map((r) => names.map((_, i) => String(r[i] ?? "")).join("\t"));
    parts.push(code([names.join("\t"), ...rows].join("\n")) + (d.table.rows.length > TABLE_ROWS ? `\n_first ${TABLE_ROWS} of ${d.table.rows.length} rows_` : ""));
  }
  let text = parts.join("\n\n");
  if (text.length > MAX_TEXT) text = `${text.slice(0, MAX_TEXT)}… (cut; the whole answer is in the Sextant console)`;
  // A cut inside a code block would leave it open: close it.
  if ((text.match(/```/g) ?? []).length % 2 === 1) text += "```";
  return text;
}
