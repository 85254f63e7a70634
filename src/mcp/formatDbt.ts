import { codeBlock, fenceUntrusted, mermaidLabel, oneLine } from "./formatUntrusted.ts";

type Json = Record<string, unknown>;
const list = (v: unknown) => (Array.isArray(v) ? (v as Json[]) : []);

/**
 * Mermaid flowchart of a model's lineage (upstream -> model -> downstream), nearest levels.
 * Node ids are Sextant's own (n0, n1, ...: two unique_ids can never merge into one node) and
 * every label goes through mermaidLabel, so a name cannot leave its `["…"]`.
 */
export function lineageMermaid(row: Json): string {
  const ids = new Map<string, string>();
  const lines = ["flowchart LR"];
  const id = (node: Json) => {
    const key = String(node.unique_id);
    if (!ids.has(key)) {
      ids.set(key, `n${ids.size}`);
      lines.push(`  ${ids.get(key)}["${mermaidLabel(node.name)}"]`);
    }
    return ids.get(key)!;
  };
  id(row);
  for (const n of [...list(row.upstream).slice(0, 40), ...list(row.downstream).slice(0, 40)]) id(n);
  const edges: string[] = [];
  for (const u of list(row.upstream).filter((u) => u.depth === 1)) edges.push(`  ${id(u)} --> ${id(row)}`);
  for (const d of list(row.downstream).filter((d) => d.depth === 1)) edges.push(`  ${id(row)} --> ${id(d)}`);
  lines.push(...edges);
  return lines.join("\n");
}

/**
 * get_model_details as text: summary, columns with tests, lineage diagram, SQL. All of it
 * comes from the tenant's dbt artifacts, so all of it is inside the untrusted-data fence; the
 * one-line fields stay on one line and the code blocks cannot be closed by their content.
 */
export function formatModelDetails(row: Json): { text: string; structured: Json } {
  const lines = [
    `${oneLine(row.name)} (${oneLine(row.resource_type)}${row.materialization ? `, ${oneLine(row.materialization)}` : ""}) in ${oneLine(row.project_name)}: ${row.relation_name ? oneLine(row.relation_name) : "no relation (ephemeral)"}`,
  ];
  if (row.description) lines.push(String(row.description).trim());
  if (row.last_run_status) lines.push(`last run: ${oneLine(row.last_run_status)}${row.last_run_at ? ` at ${oneLine(row.last_run_at)}` : ""}`);
  lines.push("columns:");
  for (const c of list(row.columns)) {
    const tests = list(c.tests).length ? ` [tests: ${list(c.tests).map(oneLine).join(", ")}]` : "";
    const type = c.data_type ?? c.catalog_type;
    lines.push(`  ${oneLine(c.name)}${type ? ` ${oneLine(type)}` : ""}${c.description ? ` -- ${oneLine(c.description)}` : ""}${tests}`);
  }
  const exposures = list(row.exposures);
  if (exposures.length) lines.push(`used by exposures: ${exposures.map((e) => oneLine(e.name)).join(", ")}`);
  lines.push("lineage:", codeBlock(lineageMermaid(row), "mermaid"));
  if (row.sql) lines.push(`${row.sql_is_compiled ? "compiled SQL" : "SQL"}:`, codeBlock(String(row.sql).slice(0, 20000), "sql"));
  return { text: fenceUntrusted(lines.join("\n"), "model details", "the tenant's dbt project"), structured: row };
}
