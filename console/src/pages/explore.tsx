import { useState } from "preact/hooks";
import { tool } from "../api.ts";
import { Grid, cellText, type Column, type Row as ResultRow } from "../components/grid.tsx";
import { Loading, Problem, useLoad } from "../components/status.tsx";
import { href } from "../router.ts";
import { Knowledge } from "./knowledge.tsx";

type Row = Record<string, unknown>;
const list = (v: unknown) => (Array.isArray(v) ? (v as Row[]) : []);
const t = (v: unknown) => cellText(v);

export function ExplorePage(props: { schema?: string }) {
  const schemas = useLoad(() => tool<{ rows: Row[] }>("list_schemas"), []);
  const [filter, setFilter] = useState("");
  const tables = useLoad(() => tool<{ rows: Row[] }>("list_tables", { schema: props.schema || undefined, max_results: 500 }), [props.schema]);
  const shown = list(tables.data?.rows).filter((r) => `${t(r.schema_name)}.${t(r.table_name)} ${t(r.description)}`.toLowerCase().includes(filter.toLowerCase()));
  return (
    <section aria-labelledby="explore-h">
      <h1 id="explore-h">Explore{props.schema ? `: ${props.schema}` : ""}</h1>
      <div class="columns">
        <nav aria-label="Schemas" class="side">
          <h2>Schemas</h2>
          <Problem error={schemas.error} />
          <ul>
            <li><a href={href("explore")} aria-current={!props.schema ? "page" : undefined}>All schemas</a></li>
            {list(schemas.data?.rows).map((s) => (
              <li key={t(s.schema_name)}>
                <a href={href("explore", t(s.schema_name))} aria-current={props.schema === s.schema_name ? "page" : undefined}>{t(s.schema_name)}</a>{" "}
                <span class="muted">{t(s.table_count)}</span>
              </li>
            ))}
          </ul>
        </nav>
        <div class="wide">
          <label for="table-filter">Search tables</label>
          <input id="table-filter" type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
          <Problem error={tables.error} />
          <Loading loading={tables.loading} what="tables" />
          <table class="list">
            <caption class="sr-only">Tables and views</caption>
            <thead><tr><th scope="col">Table</th><th scope="col">Kind</th><th scope="col">Rows (estimate)</th><th scope="col">Freshness</th><th scope="col">Comment</th></tr></thead>
            <tbody>
              {shown.map((r) => (
                <tr key={`${t(r.schema_name)}.${t(r.table_name)}`}>
                  <td><a href={href("table", t(r.schema_name), t(r.table_name))}>{t(r.schema_name)}.{t(r.table_name)}</a></td>
                  <td>{t(r.kind)}</td>
                  <td class="num">{t(r.estimated_rows)}</td>
                  <td>{r.last_loaded_at ? t(r.last_loaded_at) : "—"}</td>
                  <td>{t(r.description)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </section>
  );
}

export function TablePage(props: { schema: string; table: string; level: string }) {
  const d = useLoad(() => tool<Row>("describe_table", { schema: props.schema, table: props.table }), [props.schema, props.table]);
  const sample = useLoad(() => tool<{ columns: Column[]; rows: ResultRow[] }>("sample_table", { schema: props.schema, table: props.table, n: 20 }), [props.schema, props.table]);
  const row = d.data;
  const dbt = row?.dbt as Row | undefined;
  return (
    <section aria-labelledby="table-h">
      <p><a href={href("explore", props.schema)}>← {props.schema}</a></p>
      <h1 id="table-h">{props.schema}.{props.table}</h1>
      <Problem error={d.error} />
      <Loading loading={d.loading} what="the table" />
      {row ? (
        <>
          <p class="muted">{t(row.kind)} · about {row.estimated_rows === null ? "?" : t(row.estimated_rows)} rows{row.total_bytes ? ` · ${t(row.total_bytes)} bytes` : ""}</p>
          {row.description ? <p class="doc">{t(row.description)}</p> : null}
          {dbt ? (
            <div class="panel" aria-labelledby="dbt-h">
              <h2 id="dbt-h">dbt</h2>
              <p><a href={href("model", t(dbt.unique_id))}>{t(dbt.unique_id)}</a> ({t(dbt.materialization ?? dbt.resource_type)})</p>
              {dbt.description ? <p class="doc">{t(dbt.description)}</p> : null}
              {dbt.drift ? <p class="warn">Drift: {t(dbt.drift)}</p> : null}
            </div>
          ) : null}
          <h2>Columns</h2>
          <table class="list">
            <caption class="sr-only">Columns of {props.table}</caption>
            <thead><tr><th scope="col">Column</th><th scope="col">Type</th><th scope="col">Flags</th><th scope="col">Description</th></tr></thead>
            <tbody>
              {list(row.columns).map((c) => (
                <tr key={t(c.name)}>
                  <td>{t(c.name)}</td><td>{t(c.type)}</td>
                  <td>{[c.primary_key || c.pk ? "key" : "", c.nullable === false ? "not null" : "", c.sensitive ? "sensitive (masked)" : ""].filter(Boolean).join(", ")}</td>
                  <td>{t(c.description ?? c.comment)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {list(row.foreign_keys).length || list(row.referenced_by).length ? (
            <>
              <h2>Keys</h2>
              <ul>
                {list(row.foreign_keys).map((fk, i) => <li key={`f${i}`}>({list(fk.columns).map(t).join(", ")}) → {t(fk.references)}({list(fk.referenced_columns).map(t).join(", ")})</li>)}
                {list(row.referenced_by).map((fk, i) => <li key={`r${i}`}>referenced by {t(fk.table)}({list(fk.columns).map(t).join(", ")})</li>)}
              </ul>
            </>
          ) : null}
          {list(row.indexes).length ? (
            <>
              <h2>Indexes</h2>
              <ul>{list(row.indexes).map((ix, i) => <li key={i}><code>{t(ix.definition)}</code></li>)}</ul>
            </>
          ) : null}
          <Knowledge table={`${props.schema}.${props.table}`} level={props.level} />
        </>
      ) : null}
      <h2>Sample rows</h2>
      <p class="muted">Sensitive columns are masked by the database.</p>
      <Problem error={sample.error} />
      {sample.data ? <Grid columns={sample.data.columns} rows={sample.data.rows} caption={`Sample rows of ${props.table}`} /> : null}
    </section>
  );
}
