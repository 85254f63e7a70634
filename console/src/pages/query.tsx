import { useEffect, useRef, useState } from "preact/hooks";
import { op, tool } from "../api.ts";
import { Chart, suggestChart, type ChartKind } from "../components/chart.tsx";
import { Grid, cellText, toCsv, type Column, type Row } from "../components/grid.tsx";
import { Problem, useLoad } from "../components/status.tsx";
import { createEditor } from "../components/editor.ts";

interface QueryResult {
  columns: Column[];
  /** Arrays of values in the order of columns. */
  rows: Row[];
  row_count: number;
  truncated: boolean;
  next_offset: number | null;
  elapsed_ms: number;
}

const PAGE = 100;
const START = "select 1 as n";

export function QueryPage() {
  const host = useRef<HTMLDivElement>(null);
  const sqlRef = useRef(sessionStorage.getItem("sx-sql") ?? START);
  const [result, setResult] = useState<QueryResult>();
  const [offset, setOffset] = useState(0);
  const [error, setError] = useState<string>();
  const [plan, setPlan] = useState<Record<string, unknown>>();
  const [busy, setBusy] = useState(false);
  const [chart, setChart] = useState<{ kind: ChartKind; x: string; y: string }>();
  const history = useLoad(() => op<Record<string, unknown>[]>("my_query_history", { max_results: 20, tool: "query" }), [result]);

  const run = async (at = 0) => {
    setBusy(true);
    setError(undefined);
    try {
      const r = await tool<QueryResult>("query", { sql: sqlRef.current, max_rows: PAGE, row_offset: at });
      setResult(r);
      setOffset(at);
      setChart((c) => (c && r.columns.some((x) => x.name === c.x) && r.columns.some((x) => x.name === c.y) ? c : suggestChart(r.columns)));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const runRef = useRef(run);
  runRef.current = run;
  useEffect(() => {
    const view = createEditor(host.current!, sqlRef.current, {
      label: "SQL query (Ctrl+Enter runs it)",
      onRun: () => void runRef.current(0),
      onChange: (text) => { sqlRef.current = text; sessionStorage.setItem("sx-sql", text); },
    });
    return () => view.destroy();
  }, []);

  const explain = async () => {
    setError(undefined);
    try {
      setPlan(await tool("explain_query", { sql: sqlRef.current }));
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const download = () => {
    if (!result) return;
    const url = URL.createObjectURL(new Blob([toCsv(result.columns, result.rows)], { type: "text/csv" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `sextant-rows-${offset + 1}-${offset + result.rows.length}.csv`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <section aria-labelledby="query-h">
      <h1 id="query-h">Query</h1>
      <p class="muted" id="editor-help">One read-only statement, run as you in this tenant. Ctrl+Enter runs it; Tab leaves the editor.</p>
      <div class="editor" ref={host} />
      <div class="row">
        <button type="button" onClick={() => run(0)} disabled={busy}>Run</button>
        <button type="button" class="secondary" onClick={explain}>Explain</button>
        <button type="button" class="secondary" onClick={download} disabled={!result}>Download CSV</button>
      </div>
      <Problem error={error} />
      <div role="status" class="muted">{busy ? "Running…" : result ? `Rows ${offset + 1}–${offset + result.rows.length}${result.truncated ? " (more rows exist)" : ""} in ${result.elapsed_ms} ms` : ""}</div>
      {result ? (
        <>
          <div class="row" aria-label="Pages">
            <button type="button" class="secondary" disabled={offset === 0 || busy} onClick={() => run(Math.max(0, offset - PAGE))}>Previous page</button>
            <button type="button" class="secondary" disabled={!result.truncated || result.next_offset === null || busy} onClick={() => run(result.next_offset!)}>Next page</button>
          </div>
          <Grid columns={result.columns} rows={result.rows} caption="Query result" firstRow={offset} />
          {chart ? (
            <div class="panel">
              <h2>Chart</h2>
              <div class="row">
                <label>Kind <select value={chart.kind} onChange={(e) => setChart({ ...chart, kind: (e.target as HTMLSelectElement).value as ChartKind })}>
                  <option value="bar">bar</option><option value="line">line</option><option value="scatter">scatter</option>
                </select></label>
                <label>X <select value={chart.x} onChange={(e) => setChart({ ...chart, x: (e.target as HTMLSelectElement).value })}>
                  {result.columns.map((c) => <option key={c.name} value={c.name}>{c.name}</option>)}
                </select></label>
                <label>Y <select value={chart.y} onChange={(e) => setChart({ ...chart, y: (e.target as HTMLSelectElement).value })}>
                  {result.columns.map((c) => <option key={c.name} value={c.name}>{c.name}</option>)}
                </select></label>
              </div>
              <Chart {...chart} columns={result.columns} rows={result.rows} />
            </div>
          ) : <p class="muted">No numeric column to chart.</p>}
        </>
      ) : null}
      {plan ? (
        <div class="panel">
          <h2>Plan</h2>
          <p>Estimated cost {cellText(plan.total_cost ?? plan.cost)}, rows {cellText(plan.plan_rows ?? plan.estimated_rows)}{plan.within_budget === false ? " — over your tenant's budget" : ""}</p>
          <pre class="code" tabIndex={0} aria-label="Query plan">{typeof plan.plan === "string" ? plan.plan : JSON.stringify(plan.plan ?? plan, null, 2)}</pre>
        </div>
      ) : null}
      <h2>Your recent queries</h2>
      <Problem error={history.error} />
      <ul class="history">
        {(history.data ?? []).map((h, i) => (
          <li key={i}>
            <span class="muted">{cellText(h.at)} · {cellText(h.outcome)} · {cellText(h.row_count)} rows</span>
            <pre class="code small">{cellText(h.sql)}</pre>
          </li>
        ))}
      </ul>
    </section>
  );
}
