import { App, PostMessageTransport } from "@modelcontextprotocol/ext-apps";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Chart, suggestChart, type ChartKind } from "../src/components/chart.tsx";
import { Grid, type Column, type Row } from "../src/components/grid.tsx";
import "./app.css";

/**
 * MCP App for the `query` tool: the result as a grid and a chart, paging through the same tool
 * via the host (app.callServerTool); the app itself has no network. Values are text, never markup.
 */
interface QueryResult { columns: Column[]; rows: Row[]; row_count: number; truncated: boolean; next_offset: number | null; elapsed_ms: number }

const app = new App({ name: "Sextant query result", version: "0.1.0" });
let sql = "";
let pageSize = 500;
let setState: (s: { result?: QueryResult; offset: number; error?: string; busy?: boolean }) => void = () => {};
let offset = 0;

function View() {
  const [state, set] = useState<{ result?: QueryResult; offset: number; error?: string; busy?: boolean }>({ offset: 0 });
  const [chart, setChart] = useState<{ kind: ChartKind; x: string; y: string }>();
  useEffect(() => void (setState = set), []);
  useEffect(() => void (state.result && setChart((c) => c ?? suggestChart(state.result!.columns))), [state.result]);
  const r = state.result;
  const page = async (at: number) => {
    set({ ...state, busy: true });
    const res = await app.callServerTool({ name: "query", arguments: { sql, max_rows: pageSize, row_offset: at } });
    if (res.isError) return set({ ...state, busy: false, error: res.content.map((c) => ("text" in c ? c.text : "")).join("\n") });
    offset = at;
    set({ result: res.structuredContent as unknown as QueryResult, offset: at });
  };
  if (state.error) return <p class="error" role="alert">{state.error}</p>;
  if (!r) return <p role="status">Waiting for the query result…</p>;
  return (
    <main>
      <p role="status" class="muted">Rows {state.offset + 1}–{state.offset + r.rows.length}{r.truncated ? " (more rows exist)" : ""} in {r.elapsed_ms} ms</p>
      <div class="row">
        <button type="button" disabled={state.offset === 0 || state.busy || !sql} onClick={() => page(Math.max(0, state.offset - pageSize))}>Previous page</button>
        <button type="button" disabled={!r.truncated || r.next_offset === null || state.busy || !sql} onClick={() => page(r.next_offset!)}>Next page</button>
      </div>
      <Grid columns={r.columns} rows={r.rows} caption="Query result" firstRow={state.offset} />
      {chart ? (
        <>
          <label>Chart <select value={chart.kind} onChange={(e) => setChart({ ...chart, kind: (e.target as HTMLSelectElement).value as ChartKind })}>
            <option value="bar">bar</option><option value="line">line</option><option value="scatter">scatter</option>
          </select></label>
          <Chart {...chart} columns={r.columns} rows={r.rows} />
        </>
      ) : null}
    </main>
  );
}

app.ontoolinput = (p) => {
  const args = (p.arguments ?? {}) as { sql?: string; max_rows?: number; row_offset?: number };
  sql = typeof args.sql === "string" ? args.sql : "";
  if (typeof args.max_rows === "number") pageSize = args.max_rows;
  offset = typeof args.row_offset === "number" ? args.row_offset : 0;
};
app.ontoolresult = (p) => {
  if (p.isError) setState({ offset, error: p.content?.map((c) => ("text" in c ? c.text : "")).join("\n") ?? "the query failed" });
  else setState({ result: p.structuredContent as unknown as QueryResult, offset });
};
render(<View />, document.getElementById("app")!);
void app.connect(new PostMessageTransport(window.parent, window.parent));
