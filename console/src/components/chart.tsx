import type { Column, Row } from "./grid.tsx";

export type ChartKind = "bar" | "line" | "scatter";
const NUMERIC = /^(smallint|integer|bigint|numeric|real|double precision|int[248]?|float[48]|decimal|money)/;
const TIME = /^(date|timestamp|time)/;

export const isNumeric = (c: Column) => NUMERIC.test(c.type ?? "");
export const isTime = (c: Column) => TIME.test(c.type ?? "");

/**
 * The chart the columns suggest: a time or numeric x with a numeric y → line (or scatter when
 * both are plain numbers), a text x with a numeric y → bar. Undefined when nothing is numeric.
 */
export function suggestChart(columns: Column[]): { kind: ChartKind; x: string; y: string } | undefined {
  const nums = columns.filter(isNumeric);
  if (nums.length === 0) return undefined;
  const time = columns.find(isTime);
  if (time) return { kind: "line", x: time.name, y: nums[0]!.name };
  const label = columns.find((c) => !isNumeric(c));
  if (label) return { kind: "bar", x: label.name, y: nums[0]!.name };
  if (nums.length >= 2) return { kind: "scatter", x: nums[0]!.name, y: nums[1]!.name };
  return { kind: "bar", x: nums[0]!.name, y: nums[0]!.name };
}

const W = 640;
const H = 300;
const M = { l: 56, r: 16, t: 16, b: 56 };

const num = (v: unknown) => (v === null || v === undefined || v === "" ? NaN : Number(v));
const xValue = (v: unknown, time: boolean) => (time ? Date.parse(String(v)) : num(v));
const short = (s: string) => (s.length > 14 ? `${s.slice(0, 13)}…` : s);
const fmt = (n: number) => (Math.abs(n) >= 1e6 || (Math.abs(n) < 1e-3 && n !== 0) ? n.toExponential(2) : String(Math.round(n * 1000) / 1000));

/**
 * A small SVG chart (a few hundred lines of a chart library would be mostly unused here): text
 * is SVG text nodes, so values from the data are never markup. At most 500 points are drawn.
 */
export function Chart(props: { kind: ChartKind; columns: Column[]; rows: Row[]; x: string; y: string }) {
  // Rows are arrays in the order of the columns: x and y are read by position.
  const xi = props.columns.findIndex((c) => c.name === props.x);
  const yi = props.columns.findIndex((c) => c.name === props.y);
  const time = xi >= 0 ? isTime(props.columns[xi]!) : false;
  const rows = props.rows.slice(0, 500);
  const ys = rows.map((r) => num(r[yi]));
  const finite = ys.filter(Number.isFinite);
  const title = `${props.kind} chart of ${props.y} by ${props.x}`;
  if (finite.length === 0) return <p class="muted">Nothing to chart: {props.y} has no numbers.</p>;
  const yMin = Math.min(0, ...finite);
  const yMax = Math.max(...finite, yMin + 1e-9);
  const iw = W - M.l - M.r;
  const ih = H - M.t - M.b;
  const sy = (v: number) => M.t + ih - ((v - yMin) / (yMax - yMin)) * ih;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => yMin + f * (yMax - yMin));
  let marks;
  let xLabels;
  if (props.kind === "bar") {
    const bw = iw / rows.length;
    marks = rows.map((r, i) => {
      const v = ys[i]!;
      if (!Number.isFinite(v)) return null;
      const y0 = sy(Math.max(0, yMin));
      return <rect key={i} class="mark" x={M.l + i * bw + bw * 0.1} width={Math.max(1, bw * 0.8)} y={Math.min(sy(v), y0)} height={Math.abs(y0 - sy(v))}><title>{`${String(r[xi])}: ${v}`}</title></rect>;
    });
    const every = Math.ceil(rows.length / 12);
    xLabels = rows.map((r, i) => (i % every ? null : <text key={i} x={M.l + (i + 0.5) * bw} y={H - M.b + 14} class="xlabel" transform={`rotate(30 ${M.l + (i + 0.5) * bw} ${H - M.b + 14})`}>{short(String(r[xi] ?? ""))}</text>));
  } else {
    const xs = rows.map((r) => xValue(r[xi], time));
    const pts = xs.map((x, i) => [x, ys[i]!] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const xMin = Math.min(...pts.map((p) => p[0]));
    const xMax = Math.max(...pts.map((p) => p[0]), xMin + 1e-9);
    const sx = (v: number) => M.l + ((v - xMin) / (xMax - xMin)) * iw;
    const sorted = props.kind === "line" ? [...pts].sort((a, b) => a[0] - b[0]) : pts;
    marks = props.kind === "line"
      ? [<polyline key="l" class="line" points={sorted.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")} />]
      : sorted.map(([x, y], i) => <circle key={i} class="mark" cx={sx(x)} cy={sy(y)} r={3}><title>{`${x}, ${y}`}</title></circle>);
    const label = (v: number) => (time ? new Date(v).toISOString().slice(0, 10) : fmt(v));
    xLabels = [0, 0.5, 1].map((f) => <text key={f} x={M.l + f * iw} y={H - M.b + 16} class="xlabel mid">{label(xMin + f * (xMax - xMin))}</text>);
  }
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
      <title>{title}</title>
      {ticks.map((t) => (
        <g key={t}>
          <line class="gridline" x1={M.l} x2={W - M.r} y1={sy(t)} y2={sy(t)} />
          <text class="ylabel" x={M.l - 6} y={sy(t) + 4}>{fmt(t)}</text>
        </g>
      ))}
      {marks}
      {xLabels}
      <text class="axis-title" x={M.l + iw / 2} y={H - 4}>{props.x}</text>
    </svg>
  );
}
