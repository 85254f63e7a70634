import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Settings } from "graphile-migrate";
import pg from "pg";
import { projectRoot } from "./paths.ts";
import { readPreInstallState } from "./uninstall.ts";

/**
 * One more thing the schema step installs, from a layer above this one (src/install.ts
 * composes them): `version` enters the fingerprint, `run` follows the migrations.
 */
export interface SchemaStep {
  version: string;
  run(adminUrl: string): Promise<void>;
}

/**
 * What the schema step installs, as one hash: .gmrc, the committed migrations, the sql/ files
 * it re-applies and each further step's version. Equal hashes mean there is nothing to apply.
 */
export function schemaFingerprint(steps: readonly SchemaStep[] = []): string {
  const hash = createHash("sha256");
  const gmrcText = fs.readFileSync(path.join(projectRoot, ".gmrc"), "utf8");
  hash.update(gmrcText);
  const committed = path.join(projectRoot, "migrations/committed");
  for (const file of fs.readdirSync(committed).sort()) hash.update(file).update(fs.readFileSync(path.join(committed, file)));
  const gmrc = JSON.parse(gmrcText) as { afterAllMigrations?: { file?: string }[] };
  for (const action of gmrc.afterAllMigrations ?? []) {
    if (action.file) hash.update(fs.readFileSync(path.resolve(projectRoot, "migrations", action.file)));
  }
  for (const step of steps) hash.update(step.version);
  return hash.digest("hex");
}

/** The fingerprint this database was last migrated with, if any (none before the first migration). */
async function installedFingerprint(adminUrl: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    // Two statements: a query naming a table that does not exist yet fails as a whole.
    const exists = await client.query("select to_regclass('sextant_private.settings') is not null as ok");
    if (!exists.rows[0].ok) return undefined;
    const { rows } = await client.query<{ value: string }>("select value from sextant_private.settings where key = 'schema_fingerprint'");
    return rows[0]?.value;
  } finally {
    await client.end();
  }
}

/**
 * Applies committed migrations, re-applies every sql/ file (forceActions), exactly as
 * production does, then runs `afterSchema`. Idempotent: safe on every start. When the database
 * was last migrated from the same files (schemaFingerprint) that step is skipped — it is most
 * of a start's time — unless `force` (`sextant migrate` forces it, to repair a hand-edited
 * database). Callers install through src/install.ts, which adds the upper layers' steps.
 */
export async function migrateDatabase(
  adminUrl: string,
  { verbose = false, force = false, afterSchema = [] as readonly SchemaStep[] } = {},
): Promise<void> {
  const fingerprint = schemaFingerprint(afterSchema);
  const installed = await installedFingerprint(adminUrl);
  if (force || installed !== fingerprint) {
    // What uninstall must put back, read before the first migration changes anything.
    const before = installed === undefined ? await withClient(adminUrl, (c) => preInstallSnapshot(c)) : undefined;
    // Loaded only when there is something to apply: most starts find the database migrated.
    const { Logger, migrate } = await import("graphile-migrate");
    // graphile-migrate keeps its pool for 200 ms after use, and exits the process if that pool's
    // idle connection then sees the database stop (as a short CLI command does): end it at once.
    const { clearAllPools } = await import("graphile-migrate/dist/pgReal.js");
    const gmrc = JSON.parse(fs.readFileSync(path.join(projectRoot, ".gmrc"), "utf8")) as Settings;
    const settings: Settings = {
      ...gmrc,
      connectionString: adminUrl,
      migrationsFolder: path.join(projectRoot, "migrations"),
      ...(verbose ? {} : { logger: new Logger(() => () => {}) }),
    };
    try {
      await migrate(settings, false, true);
    } finally {
      clearAllPools();
    }
    for (const step of afterSchema) await step.run(adminUrl);
    if (before) await withClient(adminUrl, (c) => recordSetting(c, "pre_install_state", before));
    await recordFingerprint(adminUrl, fingerprint);
  }
  await ensureAuthenticatorPassword(adminUrl);
  await ensureWorkerPassword(adminUrl);
}

/**
 * The authenticator's password is generated once per installation and kept in
 * sextant_private.settings, so that every server process on the database can read it with
 * the admin connection. SEXTANT_AUTHENTICATOR_PASSWORD overrides it.
 */
export async function ensureAuthenticatorPassword(adminUrl: string): Promise<string> {
  return ensureLoginPassword(adminUrl, "sextant_authenticator", "authenticator_password", process.env.SEXTANT_AUTHENTICATOR_PASSWORD);
}

/**
 * The pipeline worker's password (sextant_worker, a LOGIN role that is not superuser and can
 * switch into no tenant role), kept like the authenticator's. SEXTANT_WORKER_PASSWORD
 * overrides it.
 */
export async function ensureWorkerPassword(adminUrl: string): Promise<string> {
  return ensureLoginPassword(adminUrl, "sextant_worker", "worker_password", process.env.SEXTANT_WORKER_PASSWORD);
}

async function ensureLoginPassword(adminUrl: string, role: string, key: string, fromEnv: string | undefined): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ value: string }>("select value from sextant_private.settings where key = $1", [key]);
    let password = fromEnv || rows[0]?.value;
    if (!password || password !== rows[0]?.value) {
      password ??= randomBytes(24).toString("base64url");
      await client.query(
        `insert into sextant_private.settings (key, value) values ($1, $2)
         on conflict (key) do update set value = excluded.value`,
        [key, password],
      );
      await client.query(`alter role ${client.escapeIdentifier(role)} password ${client.escapeLiteral(password)}`);
    }
    return password;
  } finally {
    await client.end();
  }
}

/** The authenticator's connection string: the admin URL with the authenticator's credentials. */
export async function authenticatorUrl(adminUrl: string): Promise<string> {
  return loginUrl(adminUrl, "sextant_authenticator", await ensureAuthenticatorPassword(adminUrl));
}

/** The worker's connection string: the admin URL with sextant_worker's credentials. */
export async function workerUrl(adminUrl: string): Promise<string> {
  return loginUrl(adminUrl, "sextant_worker", await ensureWorkerPassword(adminUrl));
}

function loginUrl(adminUrl: string, role: string, password: string): string {
  const url = new URL(adminUrl);
  url.username = role;
  url.password = password;
  return url.toString();
}

/** The pre-install state, unless Sextant's schema is there already (an older install: none is kept). */
async function preInstallSnapshot(client: pg.ClientBase): Promise<string | undefined> {
  const { rows } = await client.query("select to_regnamespace('sextant') is null as fresh");
  return rows[0].fresh ? JSON.stringify(await readPreInstallState(client)) : undefined;
}

async function recordSetting(client: pg.ClientBase, key: string, value: string): Promise<void> {
  await client.query(
    `insert into sextant_private.settings (key, value) values ($1, $2) on conflict (key) do nothing`,
    [key, value],
  );
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function recordFingerprint(adminUrl: string, fingerprint: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(
      `insert into sextant_private.settings (key, value) values ('schema_fingerprint', $1)
       on conflict (key) do update set value = excluded.value`,
      [fingerprint],
    );
  } finally {
    await client.end();
  }
}
