import { useEffect, useState } from "preact/hooks";
import { op, tool } from "../api.ts";
import { cellText } from "../components/grid.tsx";
import { Problem, useLoad } from "../components/status.tsx";

type Row = Record<string, unknown>;
const t = cellText;
const EXAMPLE = `name: people
target_schema: t_acme__files
source: { name: files, kind: csv, directory: . }
entities:
  - { name: people, file: people.csv }
`;

/** A run followed live: get_materialization_status every second until it ends. */
function RunProgress(props: { runId: number; onEnd: () => void }) {
  const [run, setRun] = useState<Row>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const poll = async () => {
      try {
        const r = await tool<Row>("get_materialization_status", { run_id: props.runId });
        if (!live) return;
        setRun(r);
        if (["succeeded", "failed", "cancelled"].includes(String(r.status))) return props.onEnd();
      } catch (e) {
        if (live) setError((e as Error).message);
      }
      timer = setTimeout(poll, 1000);
    };
    void poll();
    return () => { live = false; clearTimeout(timer); };
  }, [props.runId]);
  const entities = (run?.entities ?? {}) as Record<string, { rows?: number; done?: boolean; pages?: number }>;
  return (
    <div class="panel" aria-live="polite">
      <h3>Run {props.runId}: <span class="status">{t(run?.status ?? "queued")}</span></h3>
      <Problem error={error} />
      {run?.current_step ? <p class="muted">Step: {t(run.current_step)}</p> : null}
      {run?.error ? <p class="error" role="alert">{t(run.error)}</p> : null}
      <ul>
        {Object.entries(entities).map(([name, e]) => (
          <li key={name}>{name}: {e.rows ?? 0} rows {e.done ? "(done)" : "(loading)"} <progress max={1} value={e.done ? 1 : undefined} aria-label={`${name} progress`} /></li>
        ))}
      </ul>
      {run && !["succeeded", "failed", "cancelled"].includes(String(run.status)) ? (
        <button type="button" class="secondary" onClick={() => tool("cancel_materialization", { run_id: props.runId }).catch((e: Error) => setError(e.message))}>Cancel run</button>
      ) : null}
    </div>
  );
}

export function PipelinesPage() {
  const pipelines = useLoad(() => tool<{ rows: Row[] }>("list_pipelines"), []);
  const [runs, setRuns] = useState<number[]>([]);
  const [error, setError] = useState<string>();
  const [yaml, setYaml] = useState(EXAMPLE);
  const run = async (pipeline: string) => {
    setError(undefined);
    try {
      const r = await tool<{ run_id: number }>("run_materialization", { pipeline });
      setRuns((v) => [r.run_id, ...v]);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const define = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      await op("create_pipeline", { yaml });
      pipelines.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section aria-labelledby="pipelines-h">
      <h1 id="pipelines-h">Pipelines</h1>
      <Problem error={error ?? pipelines.error} />
      <table class="list">
        <caption class="sr-only">Pipelines of this tenant</caption>
        <thead><tr><th scope="col">Pipeline</th><th scope="col">Target schema</th><th scope="col">Entities</th><th scope="col">Last run</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {(pipelines.data?.rows ?? []).map((p) => (
            <tr key={t(p.name)}>
              <td>{t(p.name)}</td><td>{t(p.target_schema)}</td>
              <td>{Array.isArray(p.entities) ? (p.entities as string[]).join(", ") : ""}</td>
              <td>{p.last_status ? `${t(p.last_status)} ${t(p.last_finished_at ?? "")}` : "never"}</td>
              <td><button type="button" onClick={() => run(t(p.name))} aria-label={`Run pipeline ${t(p.name)}`}>Run</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {runs.map((id) => <RunProgress key={id} runId={id} onEnd={() => pipelines.reload()} />)}
      <h2>Define a pipeline</h2>
      <form onSubmit={define}>
        <label for="pipeline-yaml">Pipeline definition (YAML; models inline; secrets are set with the CLI)</label>
        <textarea id="pipeline-yaml" rows={10} value={yaml} onInput={(e) => setYaml((e.target as HTMLTextAreaElement).value)} spellcheck={false} />
        <button type="submit">Save pipeline</button>
      </form>
    </section>
  );
}
