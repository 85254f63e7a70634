import { useState } from "preact/hooks";
import { tool } from "../api.ts";
import { cellText } from "../components/grid.tsx";
import { Lineage, type LineageModel } from "../components/lineage.tsx";
import { Loading, Problem, useLoad } from "../components/status.tsx";
import { go, href } from "../router.ts";

type Row = Record<string, unknown>;
const list = (v: unknown) => (Array.isArray(v) ? (v as Row[]) : []);
const t = (v: unknown) => cellText(v);

export function ModelsPage(props: { initial: string }) {
  const [q, setQ] = useState(props.initial);
  const projects = useLoad(() => tool<{ rows: Row[] }>("get_project_summary"), []);
  const results = useLoad(
    () => (props.initial ? tool<{ rows: Row[] }>("search_dbt_models", { query: props.initial, max_results: 20 }) : tool<{ rows: Row[] }>("list_dbt_models", { max_results: 50 })),
    [props.initial],
  );
  return (
    <section aria-labelledby="models-h">
      <h1 id="models-h">dbt models</h1>
      <p class="muted">
        {list(projects.data?.rows).map((p) => `${t(p.project_name ?? p.name)}: ${t(p.model_count ?? p.models ?? "")} models`).join(" · ") || "No dbt project loaded yet."}
      </p>
      <form role="search" onSubmit={(e) => { e.preventDefault(); go("models", q); }}>
        <label for="model-q">Search models in plain English</label>
        <div class="row">
          <input id="model-q" type="search" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} placeholder="e.g. revenue by customer" />
          <button type="submit">Search</button>
        </div>
      </form>
      <Problem error={results.error} />
      <Loading loading={results.loading} what="models" />
      <ol class="results" aria-label={props.initial ? `Models matching ${props.initial}` : "Models"}>
        {list(results.data?.rows).map((m) => (
          <li key={t(m.unique_id)}>
            <a href={href("model", t(m.unique_id))}>{t(m.name)}</a> <span class="muted">{t(m.schema_name ?? m.relation_name ?? "")}</span>
            {m.description ? <p class="doc">{t(m.description)}</p> : null}
          </li>
        ))}
      </ol>
    </section>
  );
}

export function ModelPage(props: { id: string }) {
  const d = useLoad(() => tool<Row>("get_model_details", { model: props.id, lineage_depth: 2 }), [props.id]);
  const m = d.data;
  return (
    <section aria-labelledby="model-h">
      <p><a href={href("models")}>← dbt models</a></p>
      <Problem error={d.error} />
      <Loading loading={d.loading} what="the model" />
      {m ? (
        <>
          <h1 id="model-h">{t(m.name)}</h1>
          <p class="muted">{t(m.resource_type)}{m.materialization ? `, ${t(m.materialization)}` : ""} in {t(m.project_name)} · {m.relation_name ? t(m.relation_name) : "no relation (ephemeral)"}</p>
          {m.description ? <p class="doc">{t(m.description)}</p> : null}
          <h2>Lineage</h2>
          <Lineage model={m as unknown as LineageModel} onOpen={(id) => go("model", id)} />
          <h2>Columns</h2>
          <table class="list">
            <caption class="sr-only">Columns of {t(m.name)}</caption>
            <thead><tr><th scope="col">Column</th><th scope="col">Type</th><th scope="col">Tests</th><th scope="col">Description</th></tr></thead>
            <tbody>
              {list(m.columns).map((c) => (
                <tr key={t(c.name)}><td>{t(c.name)}</td><td>{t(c.data_type ?? c.catalog_type)}</td><td>{list(c.tests).map(t).join(", ")}</td><td>{t(c.description)}</td></tr>
              ))}
            </tbody>
          </table>
          {m.sql ? (
            <>
              <h2>{m.sql_is_compiled ? "Compiled SQL" : "SQL"}</h2>
              <pre class="code" tabIndex={0} aria-label="Model SQL">{t(m.sql)}</pre>
            </>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
