import { Graph, layout } from "@dagrejs/dagre";
import { useMemo, useState } from "preact/hooks";

export interface LineageNode {
  unique_id: string;
  name: string;
  resource_type?: string;
  depth?: number;
}

export interface LineageModel extends LineageNode {
  upstream?: LineageNode[];
  downstream?: LineageNode[];
}

const NODE_W = 170;
const NODE_H = 36;

/**
 * The model's lineage laid out by dagre (left to right). get_model_details gives each node's
 * distance, not its own edges: a node k steps away gets one edge of length k (dashed when k > 1),
 * so the layers are right and no edge is made up. Zoom with the buttons or the keyboard (+, -, 0).
 */
export function Lineage(props: { model: LineageModel; onOpen?: (uniqueId: string) => void }) {
  const { model } = props;
  const laid = useMemo(() => {
    const g = new Graph();
    g.setGraph({ rankdir: "LR", nodesep: 16, ranksep: 60, marginx: 10, marginy: 10 });
    g.setDefaultEdgeLabel(() => ({}));
    const nodes = new Map<string, LineageNode & { role: string }>();
    nodes.set(model.unique_id, { ...model, role: "self" });
    for (const n of (model.upstream ?? []).slice(0, 60)) nodes.set(n.unique_id, { ...n, role: "up" });
    for (const n of (model.downstream ?? []).slice(0, 60)) nodes.set(n.unique_id, { ...n, role: "down" });
    for (const [id] of nodes) g.setNode(id, { width: NODE_W, height: NODE_H });
    for (const n of nodes.values()) {
      if (n.role === "up") g.setEdge(n.unique_id, model.unique_id, { minlen: n.depth ?? 1 });
      if (n.role === "down") g.setEdge(model.unique_id, n.unique_id, { minlen: n.depth ?? 1 });
    }
    layout(g);
    const size = g.graph() as { width?: number; height?: number };
    return {
      width: Math.max(size.width ?? 0, NODE_W + 20),
      height: Math.max(size.height ?? 0, NODE_H + 20),
      nodes: [...nodes.values()].map((n) => ({ ...n, ...(g.node(n.unique_id) as unknown as { x: number; y: number }) })),
      edges: g.edges().map((e) => ({ ...e, depth: nodes.get(e.v === model.unique_id ? e.w : e.v)?.depth ?? 1, points: (g.edge(e) as unknown as { points: { x: number; y: number }[] }).points })),
    };
  }, [model]);
  const [zoom, setZoom] = useState(1);
  const z = (f: number) => setZoom((v) => Math.min(3, Math.max(0.3, f === 0 ? 1 : v * f)));
  const label = `Lineage of ${model.name}: ${model.upstream?.length ?? 0} upstream, ${model.downstream?.length ?? 0} downstream`;
  return (
    <div class="lineage">
      <div class="toolbar" role="toolbar" aria-label="Zoom the lineage graph">
        <button type="button" onClick={() => z(1.25)} aria-label="Zoom in">+</button>
        <button type="button" onClick={() => z(0.8)} aria-label="Zoom out">−</button>
        <button type="button" onClick={() => z(0)}>Reset zoom</button>
      </div>
      <div class="lineage-view" tabIndex={0} role="region" aria-label={label}
        onKeyDown={(e) => { if (e.key === "+" || e.key === "=") z(1.25); else if (e.key === "-") z(0.8); else if (e.key === "0") z(0); }}>
        <svg width={laid.width * zoom} height={laid.height * zoom} viewBox={`0 0 ${laid.width} ${laid.height}`} role="img" aria-label={label}>
          <title>{label}</title>
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
            </marker>
          </defs>
          {laid.edges.map((e) => (
            <polyline key={`${e.v}>${e.w}`} class={e.depth > 1 ? "edge far" : "edge"} marker-end="url(#arrow)"
              points={e.points.map((p) => `${p.x},${p.y}`).join(" ")} />
          ))}
          {laid.nodes.map((n) => (
            <g key={n.unique_id} class={`node ${n.role} ${n.resource_type ?? ""}`} transform={`translate(${n.x - NODE_W / 2} ${n.y - NODE_H / 2})`}
              onClick={() => n.role !== "self" && props.onOpen?.(n.unique_id)}>
              <rect width={NODE_W} height={NODE_H} rx={6} />
              <text x={NODE_W / 2} y={NODE_H / 2 + 5}>{n.name.length > 22 ? `${n.name.slice(0, 21)}…` : n.name}</text>
              <title>{`${n.unique_id}${n.depth ? ` (${n.depth} step${n.depth > 1 ? "s" : ""} ${n.role === "up" ? "upstream" : "downstream"})` : ""}`}</title>
            </g>
          ))}
        </svg>
      </div>
      {props.onOpen ? (
        <ul class="lineage-list" aria-label="Models in the lineage">
          {laid.nodes.filter((n) => n.role !== "self").map((n) => (
            <li key={n.unique_id}>
              <button type="button" class="link" onClick={() => props.onOpen!(n.unique_id)}>{n.name}</button>{" "}
              <span class="muted">{n.role === "up" ? "upstream" : "downstream"}, {n.depth} step{n.depth === 1 ? "" : "s"}</span>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
