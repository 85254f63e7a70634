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
export async function installDatabase(
  adminUrl: string,
  { warn = () => {}, ...options }: { verbose?: boolean; force?: boolean; warn?: (message: string) => void } = {},
): Promise<void> {
  await migrateDatabase(adminUrl, {
    ...options,
    afterSchema: [{ version: packageVersion("graphile-worker"), run: installWorkerSchema }],
  });
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await ensureSigningKey(admin);
    await ensureThesaurus(admin);
    for (const slug of await tenantsWithInvalidPatterns(admin)) {
      warn(`tenant ${slug}'s stored sensitive-column patterns include one PostgreSQL cannot compile (stored before ` +
        `migration 000121); every update of the tenant is refused until the list is replaced: ` +
        `\`sextant tenant update ${slug} --sensitive <regex>\` (repeatable)`);
    }
  } finally {
    await admin.end();
  }
}

/**
 * Tenants whose stored sensitive-column patterns fail the CHECK that migration 000121 added as
 * NOT VALID (sql/tenants.sql validates it once none does). Nothing to read once it is valid.
 */
async function tenantsWithInvalidPatterns(admin: pg.Client): Promise<string[]> {
  const { rows } = await admin.query<{ slug: string }>(
    `select t.slug from sextant.tenants as t
      where exists (select from pg_catalog.pg_constraint as c
                     where c.conrelid = 'sextant.tenants'::regclass and c.conname = 'tenants_sensitive_column_patterns_compile'
                       and not c.convalidated)
        and not sextant_private.patterns_compile(t.sensitive_column_patterns)
      order by t.slug`,
  );
  return rows.map((r) => r.slug);
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
