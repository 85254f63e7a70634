// Ask in plain English (ASK's page; the answering loop is src/ask/, POST /console/api/ask).
import { useRef, useState } from "preact/hooks";
import { Chart } from "../components/chart.tsx";
import { Grid, type Column, type Row } from "../components/grid.tsx";

interface Details {
  sql: { sql: string; row_count: number }[];
  models: string[];
  table?: { columns: Column[]; rows: Row[]; truncated: boolean };
  chart?: { type: "bar" | "line" | "pie"; x: string; y: string };
}
interface Turn {
  question: string;
  steps: string[];
  answer?: string;
  stopped?: { message: string; hint?: string };
  details?: Details;
}

/** Reads server-sent events from a fetch response, calling `on` for each one. */
async function readEvents(res: Response, on: (event: string, data: Record<string, any>) => void): Promise<void> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (event && data) on(event, JSON.parse(data));
    }
  }
}

function stepText(event: string, d: Record<string, any>): string | undefined {
  if (event === "tool_call") return `${d.name}…`;
  if (event === "tool_result") return d.ok ? `${d.name}: done${typeof d.row_count === "number" ? ` (${d.row_count} rows)` : ""}` : `${d.name}: refused — ${d.error ?? ""}`;
  return undefined;
}

export function AskPage(props: { csrf: string }) {
  const [turns, setTurns] = useState<Turn[]>([]);
  const [conversation, setConversation] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const input = useRef<HTMLTextAreaElement>(null);

  const update = (fn: (t: Turn) => Turn) => setTurns((all) => [...all.slice(0, -1), fn(all.at(-1)!)]);

  const ask = async (e: Event) => {
    e.preventDefault();
    const question = input.current!.value.trim();
    if (!question) return;
    setBusy(true);
    setError(undefined);
    setTurns((all) => [...all, { question, steps: [] }]);
    try {
      const res = await fetch("/console/api/ask", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": props.csrf },
        body: JSON.stringify({ question, conversation_id: conversation }),
        credentials: "same-origin",
      });
      if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
        const j = (await res.json().catch(() => ({}))) as { message?: string; hint?: string };
        update((t) => ({ ...t, stopped: { message: j.message ?? `HTTP ${res.status}`, hint: j.hint } }));
        return;
      }
      input.current!.value = "";
      await readEvents(res, (event, d) => {
        if (event === "conversation") setConversation(d.conversation_id);
        const line = stepText(event, d);
        if (line) update((t) => ({ ...t, steps: [...t.steps, line] }));
        if (event === "answer") update((t) => ({ ...t, answer: d.text, details: d.details }));
        if (event === "stopped") update((t) => ({ ...t, stopped: { message: d.message, hint: d.hint }, details: d.details }));
      });
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="ask">
      <h1>Ask</h1>
      <p class="muted">Ask a question about your data in plain English. The answer is worked out with the same tools and permissions you have, and shows the SQL it ran.</p>
      {turns.map((t, i) => (
        <article class="card ask-turn" key={i} aria-label={`Question ${i + 1}`}>
          <h2 class="ask-question">{t.question}</h2>
          {t.steps.length ? <ol class="ask-steps" aria-label="Steps">{t.steps.map((s, k) => <li key={k}>{s}</li>)}</ol> : null}
          {t.answer !== undefined ? <div class="ask-answer">{t.answer.split(/\n+/).map((line, k) => <p key={k}>{line}</p>)}</div> : null}
          {t.stopped ? <p class="error" role="alert">{t.stopped.message}{t.stopped.hint ? ` — ${t.stopped.hint}` : ""}</p> : null}
          {t.details?.sql.length ? (<><h3>SQL it ran</h3>{t.details.sql.map((q, k) => <pre key={k} class="ask-sql">{q.sql}</pre>)}</>) : null}
          {t.details?.models.length ? <p>dbt models: {t.details.models.join(", ")}</p> : null}
          {t.answer !== undefined && t.details?.chart && t.details.table ? (
            <Chart kind={t.details.chart.type === "line" ? "line" : "bar"} columns={t.details.table.columns} rows={t.details.table.rows} x={t.details.chart.x} y={t.details.chart.y} />
          ) : null}
          {t.answer !== undefined && t.details?.table ? <Grid columns={t.details.table.columns} rows={t.details.table.rows} caption={`Result of question ${i + 1}`} /> : null}
        </article>
      ))}
      {error ? <p class="error" role="alert">{error}</p> : null}
      <form onSubmit={ask} class="card">
        <label for="ask-question">Your question</label>
        <textarea id="ask-question" ref={input} rows={3} maxLength={4000} placeholder="e.g. What were our five largest orders last month?" />
        <button type="submit" disabled={busy}>{busy ? "Working…" : "Ask"}</button>
        {conversation ? <button type="button" class="secondary" disabled={busy} onClick={() => { setConversation(undefined); setTurns([]); }}>New conversation</button> : null}
      </form>
    </section>
  );
}
