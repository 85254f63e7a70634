/** Compact text renderings of catalog results, for a model's context window. */

type Json = Record<string, unknown>;

const list = (v: unknown) => (Array.isArray(v) ? (v as Json[]) : []);

/** describe_table: one line per column, then keys, references and indexes. */
export function formatTableDescription(row: Json): { text: string; structured: Json } {
  const lines = [
    `${row.schema_name}.${row.table_name} (${row.kind}; ~${row.estimated_rows ?? "?"} rows${row.total_bytes ? `; ${row.total_bytes} bytes` : ""})`,
  ];
  if (row.description) lines.push(`  ${row.description}`);
  const dbt = row.dbt as Json | null;
  if (dbt) lines.push(`  dbt: ${dbt.unique_id} (${dbt.materialization ?? dbt.resource_type})${dbt.description ? ` -- ${String(dbt.description).trim()}` : ""}`);
  lines.push("columns:");
  for (const c of list(row.columns)) {
    const flags = [c.primary_key && "pk", c.nullable === false && "not null", c.sensitive && "sensitive", c.default && `default ${c.default}`]
      .filter(Boolean)
      .join(", ");
    lines.push(`  ${c.name} ${c.type}${flags ? ` [${flags}]` : ""}${c.description ? ` -- ${c.description}` : ""}`);
  }
  for (const fk of list(row.foreign_keys)) {
    lines.push(`references: (${list(fk.columns).join(", ")}) -> ${fk.references}(${list(fk.referenced_columns).join(", ")})`);
  }
  for (const fk of list(row.referenced_by)) {
    lines.push(`referenced by: ${fk.table}(${list(fk.columns).join(", ")})`);
  }
  const knowledge = row.knowledge as Json | null;
  const note = knowledge?.note as Json | undefined;
  if (note) {
    for (const key of ["description", "use_cases", "data_quality_notes", "owner", "refresh_frequency"]) {
      if (note[key]) lines.push(`note ${key.replace(/_/g, " ")}: ${note[key]}`);
    }
  }
  for (const l of list(knowledge?.learnings)) lines.push(`learning (${l.status}, confidence ${l.confidence}): ${l.learning}`);
  for (const ix of list(row.indexes)) lines.push(`index: ${ix.definition}`);
  for (const ck of list(row.constraints)) lines.push(`${ck.type}: ${ck.definition}`);
  return { text: lines.join("\n"), structured: row };
}

/** get_metadata: a data dictionary, one line per column with a few sample values. */
export function formatDataDictionary(row: Json): { text: string; structured: Json } {
  const lines: string[] = [];
  for (const t of list(row.tables)) {
    lines.push(`${t.table}${t.kind ? ` (${t.kind})` : ""}${t.rows !== undefined ? ` ~${t.rows} rows` : ""}${t.loaded_at ? ` loaded ${t.loaded_at}` : ""}${t.description ? ` -- ${t.description}` : ""}`);
    const k = t.knowledge as Json | undefined;
    if (k?.note) lines.push(`  note: ${k.note}`);
    if (k?.data_quality) lines.push(`  data quality: ${k.data_quality}`);
    for (const h of list(k?.join_hints)) lines.push(`  join hint: ${h.table ?? ""}${h.on ? ` on ${h.on}` : ""}${h.note ? ` -- ${h.note}` : ""}`);
    for (const l of list(k?.learnings)) lines.push(`  learning: ${l}`);
    for (const c of list(t.columns)) {
      const samples = list(c.samples).length ? ` e.g. ${list(c.samples).map((s) => JSON.stringify(s)).join(", ")}` : "";
      lines.push(`  ${c.name} ${c.type}${c.pk ? " pk" : ""}${c.sensitive ? " sensitive" : ""}${c.description ? ` -- ${c.description}` : ""}${samples}`);
    }
  }
  const joins = list(row.join_paths);
  if (joins.length) lines.push("joins:", ...joins.map((j) => `  ${j.from} -> ${j.to}`));
  const enums = list(row.enums);
  if (enums.length) lines.push("enums:", ...enums.map((e) => `  ${e.type}: ${list(e.values).join(" | ")}`));
  return { text: lines.join("\n") || "no readable tables", structured: row };
}
