import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadDbtArtifacts } from "../../src/dbt/loadArtifacts.ts";
import type { TestDatabase } from "./db.ts";

type Column = { description: string; data_type: string; meta?: Record<string, unknown> };

/**
 * A dbt model node (manifest v12) of `project` built as table `schema`.`name`, for manifests a
 * test writes itself; `columns` by name.
 */
export function modelNode(project: string, schema: string, name: string,
  model: { description: string; columns: Record<string, Column>; raw_code?: string; tags?: string[] }): Record<string, unknown> {
  return {
    unique_id: `model.${project}.${name}`, name, resource_type: "model", package_name: project,
    database: "x", schema, alias: name, relation_name: `x.${schema}.${name}`,
    config: { materialized: "table" }, description: model.description,
    columns: Object.fromEntries(Object.entries(model.columns).map(([column, c]) => [column, { name: column, ...c }])),
    raw_code: model.raw_code ?? "select 1", depends_on: { nodes: [] }, tags: model.tags ?? [], meta: {}, original_file_path: `models/${name}.sql`,
  };
}

/** A dbt manifest (v12) of `project`: the given parts, the others empty. */
export function manifestV12(project: string, parts: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return {
    metadata: { dbt_schema_version: "https://schemas.getdbt.com/dbt/manifest/v12.json", dbt_version: "1.8.0", project_name: project },
    nodes: {}, sources: {}, exposures: {}, metrics: {}, semantic_models: {},
    ...parts,
  };
}

/**
 * Loads `manifest` for `tenant` as `sextant dbt load` does (the owner's connection), from a
 * temporary folder removed afterwards; `project` names the project when it is not the manifest's.
 */
export async function loadManifest(db: TestDatabase, manifest: unknown, opts: { tenant: string; project?: string }): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-dbt-manifest-"));
  const client = new pg.Client({ connectionString: db.adminUrl });
  try {
    fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
    await client.connect();
    await loadDbtArtifacts(client, { ...opts, dir });
  } finally {
    await client.end().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
