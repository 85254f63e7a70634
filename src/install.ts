import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import pg from "pg";
import { migrateDatabase } from "./db/migrate.ts";
import { ensureThesaurus } from "./dbt/thesaurus.ts";
import { ensureSigningKey } from "./oauth/keys.ts";
import { installWorkerSchema } from "./worker/schema.ts";

/**
 * Installs or upgrades Sextant in a database: the schema (src/db/migrate.ts: migrations, sql/,
 * login passwords) with graphile-worker's schema after it, then what the upper layers keep in
 * the database on every start (an OAuth signing key, the search thesaurus). Idempotent; every
 * door that installs comes here, so src/db/migrate.ts imports nothing above it.
 */
export async function installDatabase(adminUrl: string, options: { verbose?: boolean; force?: boolean } = {}): Promise<void> {
  await migrateDatabase(adminUrl, {
    ...options,
    afterSchema: [{ version: packageVersion("graphile-worker"), run: installWorkerSchema }],
  });
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await ensureSigningKey(admin);
    await ensureThesaurus(admin);
  } finally {
    await admin.end();
  }
}

/** A dependency's installed version (its package.json, found from its entry point: `exports` hides it). */
function packageVersion(name: string): string {
  let dir = path.dirname(createRequire(import.meta.url).resolve(name));
  while (!fs.existsSync(path.join(dir, "package.json")) || JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).name !== name) {
    const up = path.dirname(dir);
    if (up === dir) return "unknown";
    dir = up;
  }
  return String(JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).version);
}
