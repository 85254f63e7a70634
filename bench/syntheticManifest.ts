import fs from "node:fs";
import path from "node:path";

/** Writes a synthetic manifest.json (schema v12) with `n` models in layered lineage to `dir`. */
export function writeSyntheticManifest(dir: string, n: number): string {
  const words = ["customer", "order", "invoice", "payment", "shipment", "product", "refund", "session", "account", "claim"];
  const nodes: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const w = words[i % words.length]!;
    const id = `model.synthetic.${w}_${i}`;
    const parents = i < 10 ? [] : [`model.synthetic.${words[(i - 10) % words.length]}_${i - 10}`, `model.synthetic.${words[(i - 7) % words.length]}_${i - 7}`];
    nodes[id] = {
      unique_id: id, name: `${w}_${i}`, resource_type: "model", package_name: "synthetic", database: "db", schema: `layer_${i % 20}`,
      alias: `${w}_${i}`, relation_name: `db.layer_${i % 20}.${w}_${i}`, config: { materialized: i % 3 ? "table" : "view" },
      description: `Synthetic ${w} model number ${i}, derived from its parents for benchmark purposes.`,
      columns: Object.fromEntries(["id", `${w}_id`, "amount", "created_at", "status"].map((c) => [c, { name: c, description: `The ${c} of the ${w}` }])),
      raw_code: `select * from {{ ref('${w}') }}`, compiled_code: `select * from ${w}`, tags: [w], meta: {},
      original_file_path: `models/${w}_${i}.sql`, depends_on: { nodes: parents },
    };
  }
  const manifest = {
    metadata: { dbt_schema_version: "https://schemas.getdbt.com/dbt/manifest/v12.json", dbt_version: "1.8.0", project_name: "synthetic", generated_at: new Date().toISOString() },
    nodes, sources: {}, exposures: {}, metrics: {}, semantic_models: {},
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
  return dir;
}
