import { useState } from "preact/hooks";
import { op, tool } from "../api.ts";
import { cellText } from "../components/grid.tsx";
import { Loading, Problem, useLoad } from "../components/status.tsx";

type Row = Record<string, unknown>;
const t = cellText;

/**
 * A table's team knowledge (get_knowledge): the note, editable by analysts and admins, and the
 * learnings agents and people recorded, confirmed or rejected by admins. SQL decides who may.
 */
export function Knowledge(props: { table: string; level: string }) {
  const k = useLoad(() => tool<{ rows: Row[] }>("get_knowledge", { table: props.table }), [props.table]);
  const [error, setError] = useState<string>();
  const [editing, setEditing] = useState<string>();
  const row = k.data?.rows[0];
  const note = row?.note as Row | null | undefined;
  const learnings = (row?.learnings ?? []) as Row[];
  const act = async (fn: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await fn();
      setEditing(undefined);
      k.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  // Until the first answer: "loading", not "no note" and "no learnings" (which would be wrong).
  if (k.loading && !k.data) {
    return (
      <div aria-labelledby="knowledge-h">
        <h2 id="knowledge-h">Team knowledge</h2>
        <Loading loading what="team knowledge" />
      </div>
    );
  }
  return (
    <div aria-labelledby="knowledge-h">
      <h2 id="knowledge-h">Team knowledge</h2>
      <Problem error={error ?? k.error} />
      {editing !== undefined ? (
        <form onSubmit={(e) => { e.preventDefault(); void act(() => op("save_table_note", { table: props.table, description: editing })); }}>
          <label for="note-text">Note about this table</label>
          <textarea id="note-text" rows={5} value={editing} onInput={(e) => setEditing((e.target as HTMLTextAreaElement).value)} />
          <div class="row">
            <button type="submit">Save note</button>
            <button type="button" class="secondary" onClick={() => setEditing(undefined)}>Cancel</button>
          </div>
        </form>
      ) : (
        <>
          {note ? (
            <dl class="note">
              {["description", "use_cases", "data_quality_notes", "owner", "refresh_frequency"].filter((f) => note[f]).map((f) => (
                <div key={f}><dt>{f.replace(/_/g, " ")}</dt><dd class="doc">{t(note[f])}</dd></div>
              ))}
            </dl>
          ) : <p class="muted">No note about this table yet.</p>}
          {props.level !== "viewer" ? <button type="button" class="secondary" onClick={() => setEditing(t(note?.description ?? ""))}>Edit note</button> : null}
        </>
      )}
      <h3>Learnings</h3>
      {learnings.length === 0 ? <p class="muted">No learnings recorded for this table.</p> : (
        <ul class="knowledge">
          {learnings.map((l) => (
            <li key={t(l.id)}>
              <span class="doc">{t(l.learning)}</span> <span class="muted">({t(l.status)}, confidence {t(l.confidence)}, by {t(l.recorded_by)})</span>
              {props.level === "admin" && l.status === "proposed" ? (
                <>
                  {" "}<button type="button" class="secondary small" onClick={() => act(() => op("review_learning", { learning_id: Number(l.id), status: "confirmed" }))} aria-label={`Confirm learning ${t(l.id)}`}>Confirm</button>
                  {" "}<button type="button" class="danger" onClick={() => act(() => op("review_learning", { learning_id: Number(l.id), status: "rejected" }))} aria-label={`Reject learning ${t(l.id)}`}>Reject</button>
                </>
              ) : null}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
