type Json = Record<string, unknown>;
const list = (v: unknown) => (Array.isArray(v) ? (v as Json[]) : []);

/** A Mermaid node id: letters, digits and underscores only. */
const id = (uniqueId: unknown) => String(uniqueId).replace(/[^A-Za-z0-9_]/g, "_");

/** Mermaid flowchart of a model's lineage (upstream -> model -> downstream), nearest levels. */
export function lineageMermaid(row: Json): string {
  const lines = ["flowchart LR", `  ${id(row.unique_id)}["${row.name}"]`];
  const seen = new Set<string>();
  for (const u of list(row.upstream).slice(0, 40)) {
    if (!seen.has(String(u.unique_id))) lines.push(`  ${id(u.unique_id)}["${u.name}"]`), seen.add(String(u.unique_id));
  }
  for (const d of list(row.downstream).slice(0, 40)) {
    if (!seen.has(String(d.unique_id))) lines.push(`  ${id(d.unique_id)}["${d.name}"]`), seen.add(String(d.unique_id));
  }
  for (const u of list(row.upstream).filter((u) => u.depth === 1)) lines.push(`  ${id(u.unique_id)} --> ${id(row.unique_id)}`);
  for (const d of list(row.downstream).filter((d) => d.depth === 1)) lines.push(`  ${id(row.unique_id)} --> ${id(d.unique_id)}`);
  return lines.join("\n");
}

/** get_model_details as text: summary, columns with tests, lineage diagram, SQL. */
export function formatModelDetails(row: Json): { text: string; structured: Json } {
  const lines = [
    `${row.name} (${row.resource_type}${row.materialization ? `, ${row.materialization}` : ""}) in ${row.project_name}: ${row.relation_name ?? "no relation (ephemeral)"}`,
  ];
  if (row.description) lines.push(String(row.description).trim());
  if (row.last_run_status) lines.push(`last run: ${row.last_run_status}${row.last_run_at ? ` at ${row.last_run_at}` : ""}`);
  lines.push("columns:");
  for (const c of list(row.columns)) {
    const tests = list(c.tests).length ? ` [tests: ${list(c.tests).join(", ")}]` : "";
    lines.push(`  ${c.name}${c.data_type || c.catalog_type ? ` ${c.data_type ?? c.catalog_type}` : ""}${c.description ? ` -- ${c.description}` : ""}${tests}`);
  }
  const exposures = list(row.exposures);
  if (exposures.length) lines.push(`used by exposures: ${exposures.map((e) => e.name).join(", ")}`);
  lines.push("lineage:", "```mermaid", lineageMermaid(row), "```");
  if (row.sql) lines.push(`${row.sql_is_compiled ? "compiled SQL" : "SQL"}:`, "```sql", String(row.sql).slice(0, 20000), "```");
  return { text: lines.join("\n"), structured: row };
}
