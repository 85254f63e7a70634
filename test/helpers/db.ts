import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { authenticatorUrl } from "../../src/db/migrate.ts";

export interface TestDatabase {
  name: string;
  adminUrl: string;
  /** The server's login (sextant_authenticator). */
  authUrl: string;
  admin: pg.Pool;
  auth: pg.Pool;
  drop(): Promise<void>;
}

/** Clones the migrated template into a fresh database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const templateUrl = inject("templateUrl");
  const name = `sextant_test_${randomBytes(5).toString("hex")}`;
  const maintenanceUrl = templateUrl.replace(/\/[^/]+$/, "/postgres");
  const m = new pg.Client({ connectionString: maintenanceUrl });
  await m.connect();
  await m.query(`create database ${name} template sextant_test_template`);
  await m.end();
  const adminUrl = templateUrl.replace(/\/[^/]+$/, `/${name}`);
  // A clone does not copy the template's database privileges (the migration granted them there).
  const g = new pg.Client({ connectionString: adminUrl });
  await g.connect();
  await g.query(`grant create, connect on database ${name} to sextant_owner`);
  // ... nor its revokes (migration 000024: no temporary objects for PUBLIC).
  await g.query(`revoke temporary, create on database ${name} from public`);
  await g.end();
  const authUrl = await authenticatorUrl(adminUrl);
  const admin = new pg.Pool({ connectionString: adminUrl, max: 4 });
  const auth = new pg.Pool({ connectionString: authUrl, max: 8 });
  return {
    name,
    adminUrl,
    authUrl,
    admin,
    auth,
    async drop() {
      await auth.end();
      await admin.end();
      const c = new pg.Client({ connectionString: maintenanceUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** Runs `fn` in a transaction that is always rolled back. */
export async function withTx<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    return await fn(client);
  } finally {
    await client.query("rollback").catch(() => {});
    client.release();
  }
}

/** Switches the transaction to `role` the way the server does. */
export async function asRole(client: pg.ClientBase, role: string): Promise<void> {
  await client.query("select set_config('role', $1, true)", [role]);
}

/** Creates an API token through the admin connection; returns the token text. */
export async function createToken(
  db: TestDatabase,
  tenant: string,
  name: string,
  level = "viewer",
  expires: string | null = null,
): Promise<string> {
  const { rows } = await db.admin.query(
    "select sextant_private.create_api_token($1, $2, $3, now() + $4::interval) as token",
    [tenant, name, level, expires],
  );
  return rows[0].token;
}
