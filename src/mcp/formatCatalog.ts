/**
 * Compact text renderings of catalog results, for a model's context window. Names, comments,
 * dbt docs, knowledge and sample values are others' text: each rendering is one untrusted-data
 * fence, and every field is kept on its own line (oneLine), so none can fake a line of output.
 */
import { fenceUntrusted, oneLine as o } from "./formatUntrusted.ts";

type Json = Record<string, unknown>;

const list = (v: unknown) => (Array.isArray(v) ? (v as Json[]) : []);

/** describe_table: one line per column, then keys, references and indexes. */
export function formatTableDescription(row: Json): { text: string; structured: Json } {
  const lines = [
    `${o(row.schema_name)}.${o(row.table_name)} (${o(row.kind)}; ~${row.estimated_rows ?? "?"} rows${row.total_bytes ? `; ${row.total_bytes} bytes` : ""})`,
  ];
  if (row.description) lines.push(`  ${o(row.description)}`);
  const dbt = row.dbt as Json | null;
  if (dbt) lines.push(`  dbt: ${o(dbt.unique_id)} (${o(dbt.materialization ?? dbt.resource_type)})${dbt.description ? ` -- ${o(String(dbt.description).trim())}` : ""}`);
  lines.push("columns:");
  for (const c of list(row.columns)) {
    const flags = [c.primary_key && "pk", c.nullable === false && "not null", c.sensitive && "sensitive", c.default && `default ${o(c.default)}`]
      .filter(Boolean)
      .join(", ");
    lines.push(`  ${o(c.name)} ${o(c.type)}${flags ? ` [${flags}]` : ""}${c.description ? ` -- ${o(c.description)}` : ""}`);
  }
  for (const fk of list(row.foreign_keys)) {
    lines.push(`references: (${list(fk.columns).map(o).join(", ")}) -> ${o(fk.references)}(${list(fk.referenced_columns).map(o).join(", ")})`);
  }
  for (const fk of list(row.referenced_by)) {
    lines.push(`referenced by: ${o(fk.table)}(${list(fk.columns).map(o).join(", ")})`);
  }
  const knowledge = row.knowledge as Json | null;
  const note = knowledge?.note as Json | undefined;
  if (note) {
    for (const key of ["description", "use_cases", "data_quality_notes", "owner", "refresh_frequency"]) {
      if (note[key]) lines.push(`note ${key.replace(/_/g, " ")}: ${o(note[key])}`);
    }
  }
  for (const l of list(knowledge?.learnings)) lines.push(`learning (${o(l.status)}, confidence ${o(l.confidence)}): ${o(l.learning)}`);
  for (const ix of list(row.indexes)) lines.push(`index: ${o(ix.definition)}`);
  for (const ck of list(row.constraints)) lines.push(`${o(ck.type)}: ${o(ck.definition)}`);
  return { text: fenceUntrusted(lines.join("\n"), "table description lines", "the database, its comments and the team's notes"), structured: row };
}

/** get_metadata: a data dictionary, one line per column with a few sample values. */
export function formatDataDictionary(row: Json): { text: string; structured: Json } {
  const lines: string[] = [];
  for (const t of list(row.tables)) {
    lines.push(`${o(t.table)}${t.kind ? ` (${o(t.kind)})` : ""}${t.rows !== undefined ? ` ~${o(t.rows)} rows` : ""}${t.loaded_at ? ` loaded ${o(t.loaded_at)}` : ""}${t.description ? ` -- ${o(t.description)}` : ""}`);
    const k = t.knowledge as Json | undefined;
    if (k?.note) lines.push(`  note: ${o(k.note)}`);
    if (k?.data_quality) lines.push(`  data quality: ${o(k.data_quality)}`);
    for (const h of list(k?.join_hints)) lines.push(`  join hint: ${o(h.table ?? "")}${h.on ? ` on ${o(h.on)}` : ""}${h.note ? ` -- ${o(h.note)}` : ""}`);
    for (const l of list(k?.learnings)) lines.push(`  learning: ${o(l)}`);
    for (const c of list(t.columns)) {
      // JSON.stringify keeps each sample on one line (newlines become \n).
      const samples = list(c.samples).length ? ` e.g. ${list(c.samples).map((s) => JSON.stringify(s)).join(", ")}` : "";
      lines.push(`  ${o(c.name)} ${o(c.type)}${c.pk ? " pk" : ""}${c.sensitive ? " sensitive" : ""}${c.description ? ` -- ${o(c.description)}` : ""}${samples}`);
    }
  }
  const joins = list(row.join_paths);
  if (joins.length) lines.push("joins:", ...joins.map((j) => `  ${o(j.from)} -> ${o(j.to)}`));
  const enums = list(row.enums);
  if (enums.length) lines.push("enums:", ...enums.map((e) => `  ${o(e.type)}: ${list(e.values).map(o).join(" | ")}`));
  if (lines.length === 0) return { text: "no readable tables", structured: row };
  return { text: fenceUntrusted(lines.join("\n"), "data dictionary lines", "the database, its comments and the team's notes"), structured: row };
}
