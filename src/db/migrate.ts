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
async function installedFingerprint(client: pg.ClientBase): Promise<string | undefined> {
  // Two statements: a query naming a table that does not exist yet fails as a whole.
  const exists = await client.query("select to_regclass('sextant_private.settings') is not null as ok");
  if (!exists.rows[0].ok) return undefined;
  const { rows } = await client.query<{ value: string }>("select value from sextant_private.settings where key = 'schema_fingerprint'");
  return rows[0]?.value;
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
  // One admin connection for the checks and the passwords: on a migrated database that is the
  // whole step (each further connection is a round trip or three at every start).
  await withClient(adminUrl, async (client) => {
    const installed = await installedFingerprint(client);
    if (force || installed !== fingerprint) {
      await applySchema(adminUrl, client, installed, { verbose, afterSchema });
      await recordSetting(client, "schema_fingerprint", fingerprint, { replace: true });
    }
    await ensureAuthenticatorPassword(client);
    await ensureWorkerPassword(client);
  });
}

/** Migrations, the sql/ files and the further steps; records what uninstall must put back on a first install. */
async function applySchema(
  adminUrl: string,
  client: pg.ClientBase,
  installed: string | undefined,
  { verbose, afterSchema }: { verbose: boolean; afterSchema: readonly SchemaStep[] },
): Promise<void> {
  // What uninstall must put back, read before the first migration changes anything.
  const before = installed === undefined ? await preInstallSnapshot(client) : undefined;
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
  if (before) await recordSetting(client, "pre_install_state", before);
}

/**
 * The authenticator's password is generated once per installation and kept in
 * sextant_private.settings, so that every server process on the database can read it with
 * the admin connection. SEXTANT_AUTHENTICATOR_PASSWORD overrides it.
 */
export async function ensureAuthenticatorPassword(admin: string | pg.ClientBase): Promise<string> {
  return withAdmin(admin, (c) => ensureLoginPassword(c, "sextant_authenticator", "authenticator_password", process.env.SEXTANT_AUTHENTICATOR_PASSWORD));
}

/**
 * The pipeline worker's password (sextant_worker, a LOGIN role that is not superuser and can
 * switch into no tenant role), kept like the authenticator's. SEXTANT_WORKER_PASSWORD
 * overrides it.
 */
export async function ensureWorkerPassword(admin: string | pg.ClientBase): Promise<string> {
  return withAdmin(admin, (c) => ensureLoginPassword(c, "sextant_worker", "worker_password", process.env.SEXTANT_WORKER_PASSWORD));
}

async function ensureLoginPassword(client: pg.ClientBase, role: string, key: string, fromEnv: string | undefined): Promise<string> {
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
}

/**
 * The authenticator's connection string: the admin URL with the authenticator's credentials.
 * `client`: an open admin connection to ask on (else one is opened for the question).
 */
export async function authenticatorUrl(adminUrl: string, client?: pg.ClientBase): Promise<string> {
  return loginUrl(adminUrl, "sextant_authenticator", await ensureAuthenticatorPassword(client ?? adminUrl));
}

/** The worker's connection string: the admin URL with sextant_worker's credentials (`client` as above). */
export async function workerUrl(adminUrl: string, client?: pg.ClientBase): Promise<string> {
  return loginUrl(adminUrl, "sextant_worker", await ensureWorkerPassword(client ?? adminUrl));
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

async function recordSetting(client: pg.ClientBase, key: string, value: string, { replace = false } = {}): Promise<void> {
  await client.query(
    `insert into sextant_private.settings (key, value) values ($1, $2)
     on conflict (key) do ${replace ? "update set value = excluded.value" : "nothing"}`,
    [key, value],
  );
}

async function withAdmin<T>(admin: string | pg.ClientBase, fn: (c: pg.ClientBase) => Promise<T>): Promise<T> {
  return typeof admin === "string" ? withClient(admin, fn) : fn(admin);
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
