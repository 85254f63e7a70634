import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Logger, migrate, type Settings } from "graphile-migrate";
// graphile-migrate keeps its pool for 200 ms after use, and exits the process if that pool's
// idle connection then sees the database stop (as a short CLI command does): end it at once.
import { clearAllPools } from "graphile-migrate/dist/pgReal.js";
import pg from "pg";
import { ensureThesaurus } from "../dbt/thesaurus.ts";
import { ensureSigningKey } from "../oauth/keys.ts";
import { installWorkerSchema } from "../worker/schema.ts";
import { projectRoot } from "./paths.ts";

const quietLogger = new Logger(() => () => {});

/**
 * Applies committed migrations, then re-applies every sql/ file (forceActions), exactly as
 * production does. Idempotent: safe on every start.
 */
export async function migrateDatabase(adminUrl: string, { verbose = false } = {}): Promise<void> {
  const gmrc = JSON.parse(fs.readFileSync(path.join(projectRoot, ".gmrc"), "utf8")) as Settings;
  const settings: Settings = {
    ...gmrc,
    connectionString: adminUrl,
    migrationsFolder: path.join(projectRoot, "migrations"),
    ...(verbose ? {} : { logger: quietLogger }),
  };
  try {
    await migrate(settings, false, true);
  } finally {
    clearAllPools();
  }
  await installWorkerSchema(adminUrl);
  await ensureAuthenticatorPassword(adminUrl);
  await ensureWorkerPassword(adminUrl);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await ensureSigningKey(client);
    await ensureThesaurus(client);
  } finally {
    await client.end();
  }
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
  const password = await ensureAuthenticatorPassword(adminUrl);
  const url = new URL(adminUrl);
  url.username = "sextant_authenticator";
  url.password = password;
  return url.toString();
}

/** The worker's connection string: the admin URL with sextant_worker's credentials. */
export async function workerUrl(adminUrl: string): Promise<string> {
  const password = await ensureWorkerPassword(adminUrl);
  const url = new URL(adminUrl);
  url.username = "sextant_worker";
  url.password = password;
  return url.toString();
}
