import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { SextantError } from "../db/errors.ts";

export interface PipelineDefinition {
  name: string;
  description?: string;
  target_schema: string;
  schedule?: string;
  source: Record<string, unknown>;
  entities: Record<string, unknown>[];
  models: { name: string; sql: string; description?: string; columns?: unknown[] }[];
}

/** A file's content as YAML (JSON is YAML too); errors name the file and line. */
function readYaml(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new SextantError("SX404", `cannot read ${file}`);
  }
  // ${VAR} in the file comes from the environment (URLs, hosts); secrets use `secrets:`.
  text = text.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, name: string) => {
    const value = process.env[name];
    if (value === undefined) throw new SextantError("SX400", `${file} uses \${${name}}, which is not set in the environment`);
    return value;
  });
  try {
    return YAML.parse(text);
  } catch (error) {
    throw new SextantError("SX400", `${file} is not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
}

/**
 * Reads a pipeline file (YAML or JSON). `models:` may be a folder (relative to the file) of
 * dbt-style .sql files, with their docs in any .yml there (dbt's `models:` list: name,
 * description, columns). `secrets:` maps secret names to `{env: VAR}`; their values are
 * returned apart, never inside the definition.
 */
export function readPipelineFile(file: string): { definition: PipelineDefinition; secrets: Record<string, string> } {
  const doc = readYaml(file) as Record<string, unknown> | null;
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new SextantError("SX400", `${file} does not hold a pipeline (a mapping with name, source, entities)`);
  const base = path.dirname(path.resolve(file));
  let models: PipelineDefinition["models"] = [];
  if (typeof doc.models === "string") {
    const dir = path.resolve(base, doc.models);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new SextantError("SX404", `models folder ${doc.models} does not exist next to ${path.basename(file)}`);
    const docs = new Map<string, { description?: string; columns?: unknown[] }>();
    for (const f of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
      const y = readYaml(path.join(dir, f)) as { models?: { name: string; description?: string; columns?: unknown[] }[] } | null;
      for (const m of y?.models ?? []) docs.set(m.name, { description: m.description, columns: m.columns });
    }
    models = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".sql"))
      .sort()
      .map((f) => {
        const name = f.replace(/\.sql$/, "");
        return { name, sql: fs.readFileSync(path.join(dir, f), "utf8"), ...docs.get(name) };
      });
  } else if (Array.isArray(doc.models)) {
    models = doc.models as PipelineDefinition["models"];
  }
  const secrets: Record<string, string> = {};
  const declared = (doc.secrets ?? {}) as Record<string, { env?: string }>;
  for (const [name, spec] of Object.entries(declared)) {
    if (!spec?.env) throw new SextantError("SX400", `secret ${name} must say where its value comes from: {env: VARIABLE}`);
    const value = process.env[spec.env];
    if (value === undefined) throw new SextantError("SX400", `secret ${name} comes from $${spec.env}, which is not set`);
    secrets[name] = value;
  }
  const { secrets: _omit, ...rest } = doc;
  return { definition: { ...(rest as unknown as PipelineDefinition), models }, secrets };
}
