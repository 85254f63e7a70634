import type pg from "pg";

/**
 * `sextant uninstall`: everything Sextant created in a database goes, the user's data stays.
 * Created by Sextant: schemas named sextant*, graphile_worker and graphile_migrate; the schemas
 * it created for tenants (provisioned ones, sources' views, schemas that did not exist when
 * mapped); its foreign servers; the extensions that were not there before the first install;
 * roles named sextant_* and the analysts' psql logins (members of a tenant role). Changed by
 * Sextant and put back: the database's ACL (migration 000024), two catalog relations' ACLs
 * (000025), the ACL of every schema it was given (map_schema) — from what the first install and
 * each mapping recorded, or PostgreSQL's defaults for an install older than that record.
 */
export interface UninstallPlan {
  database: string;
  /** Schemas dropped with everything in them. */
  schemas: string[];
  /** The user's schemas Sextant was given: kept, their ACL put back. */
  mappedSchemas: string[];
  roles: string[];
  extensions: string[];
  servers: string[];
}

/** What the first install found (src/db/migrate.ts records it before migration 000001). */
export interface PreInstallState {
  extensions: string[];
  databaseAcl: string | null;
  /** Migration 000001 revokes CREATE on schema public from PUBLIC. */
  publicSchemaAcl?: string | null;
  catalogAcls: Record<string, string | null>;
}

/** The catalog relations whose ACL a migration changes (000025), with their columns' ACLs. */
export const CATALOG_RELATIONS = ["pg_catalog.pg_foreign_server", "pg_catalog.pg_user_mappings"];

/** Reads what is installed now, to record before the first migration (see PreInstallState). */
export async function readPreInstallState(client: pg.ClientBase): Promise<PreInstallState> {
  const { rows } = await client.query(
    `select (select coalesce(array_agg(extname::text order by extname), '{}') from pg_catalog.pg_extension) as extensions,
            (select datacl::text from pg_catalog.pg_database where datname = current_database()) as database_acl,
            (select nspacl::text from pg_catalog.pg_namespace where nspname = 'public') as public_acl,
            (select jsonb_object_agg(r, (select relacl::text from pg_catalog.pg_class where oid = r::regclass)) from unnest($1::text[]) as r) as catalog_acls`,
    [CATALOG_RELATIONS],
  );
  return { extensions: rows[0].extensions, databaseAcl: rows[0].database_acl, publicSchemaAcl: rows[0].public_acl, catalogAcls: rows[0].catalog_acls };
}

/** What uninstall would remove; undefined when Sextant is not installed in this database. */
export async function planUninstall(client: pg.ClientBase): Promise<UninstallPlan | undefined> {
  const { rows: installed } = await client.query("select to_regclass('sextant.tenant_schemas') is not null as ok, current_database() as db");
  if (!installed[0].ok) return undefined;
  const { rows } = await client.query(
    `select
       array(select nspname::text from pg_catalog.pg_namespace
             where nspname like 'sextant%' or nspname in ('graphile_worker', 'graphile_migrate')
                or nspname in (select schema_name from sextant.tenant_schemas where provisioned)
             order by 1) as schemas,
       array(select schema_name::text from sextant.tenant_schemas
             where not provisioned and to_regnamespace(schema_name) is not null order by 1) as mapped,
       -- Sextant's own roles, this database's tenants' roles, and the psql logins made members
       -- of those tenants' reader roles (never the admin running this). Roles of tenants in
       -- another database of the cluster stay.
       array(select rolname::text from pg_catalog.pg_roles as r
             where rolname in ('sextant_owner', 'sextant_authenticator', 'sextant_tenant_reader', 'sextant_worker')
                or exists (select from sextant.tenants as t where r.rolname = t.reader_role or r.rolname like t.reader_role || '\\_\\_%')
                or (rolcanlogin and rolname <> current_user
                    and exists (select from pg_catalog.pg_auth_members as m join sextant.tenants as t on t.reader_role = pg_get_userbyid(m.roleid)
                                where m.member = r.oid))
             order by 1) as roles,
       array(select srvname::text from pg_catalog.pg_foreign_server where srvname in (select server_name from sextant.sources) order by 1) as servers`,
  );
  const before = await preInstallState(client);
  const { rows: ext } = await client.query(
    "select coalesce(array_agg(extname::text order by extname), '{}') as names from pg_catalog.pg_extension where extname = any($1) and not (extname = any($2))",
    [["pgcrypto", "pg_trgm", "postgres_fdw"], before?.extensions ?? []],
  );
  return {
    database: installed[0].db,
    schemas: rows[0].schemas,
    mappedSchemas: rows[0].mapped,
    roles: rows[0].roles,
    extensions: ext[0].names,
    servers: rows[0].servers,
  };
}

async function preInstallState(client: pg.ClientBase): Promise<PreInstallState | undefined> {
  const { rows } = await client.query("select value from sextant_private.settings where key = 'pre_install_state'");
  return rows[0] ? (JSON.parse(rows[0].value) as PreInstallState) : undefined;
}

/**
 * Carries out a plan as the admin: the database's objects in one transaction, then the roles
 * (cluster-wide: a role another database still uses — a second install — is kept and named).
 */
export async function uninstall(client: pg.ClientBase, plan: UninstallPlan): Promise<{ keptRoles: { role: string; reason: string }[] }> {
  const id = (name: string) => client.escapeIdentifier(name);
  const before = await preInstallState(client);
  const { rows: mapped } = await client.query("select schema_name, acl_before from sextant.tenant_schemas where not provisioned and to_regnamespace(schema_name) is not null");
  await client.query("begin");
  try {
    for (const server of plan.servers) await client.query(`drop server if exists ${id(server)} cascade`);
    for (const schema of plan.schemas) await client.query(`drop schema if exists ${id(schema)} cascade`);
    // Default privileges, grants and anything else of Sextant's roles left in this database.
    // Default privileges granted to them first, one by one: DROP OWNED BY of several roles
    // named in one pg_default_acl entry fails ("could not find tuple for default ACL").
    const { rows: defaults } = await client.query(
      `select pg_get_userbyid(d.defaclrole) as creator, n.nspname as schema, d.defaclobjtype as kind, pg_get_userbyid(a.grantee) as grantee
       from pg_catalog.pg_default_acl as d left join pg_catalog.pg_namespace as n on n.oid = d.defaclnamespace,
            aclexplode(d.defaclacl) as a
       where pg_get_userbyid(a.grantee) = any($1) and a.grantee <> 0`,
      [plan.roles],
    );
    const kinds: Record<string, string> = { r: "tables", S: "sequences", f: "functions", T: "types", n: "schemas" };
    for (const d of defaults) {
      await client.query(`alter default privileges for role ${id(d.creator)}${d.schema ? ` in schema ${id(d.schema)}` : ""} revoke all on ${kinds[d.kind]} from ${id(d.grantee)}`);
    }
    for (const role of plan.roles) {
      // DROP OWNED needs the role's privileges: an admin with only CREATEROLE takes them first.
      const { rows: has } = await client.query("select pg_has_role($1, 'USAGE') as ok", [role]);
      if (!has[0].ok) await client.query(`grant ${id(role)} to current_user`);
      await client.query(`drop owned by ${id(role)}`);
    }
    // Each given schema's ACL as before its mapping; public's as before the first install
    // (migration 000001 changed it before any mapping did).
    const acls = new Map<string, string>(mapped.filter((m) => m.acl_before !== null).map((m) => [m.schema_name, m.acl_before]));
    if (before && before.publicSchemaAcl !== undefined) acls.set("public", before.publicSchemaAcl ?? "");
    for (const [schema, acl] of acls) {
      await restoreAcl(client, "schema", id(schema), acl || null, "select nspacl::text as acl from pg_catalog.pg_namespace where nspname = $1", [schema]);
    }
    for (const ext of plan.extensions) {
      // Kept when something of the user's came to depend on it since.
      await client.query("savepoint ext");
      await client.query(`drop extension if exists ${id(ext)}`).catch(() => client.query("rollback to savepoint ext"));
    }
    await restoreAcl(client, "database", id(plan.database), before ? before.databaseAcl : null,
      "select datacl::text as acl from pg_catalog.pg_database where datname = current_database()", []);
    for (const relation of CATALOG_RELATIONS) {
      const { rows: su } = await client.query("select rolsuper from pg_catalog.pg_roles where rolname = current_user");
      if (!su[0].rolsuper) break; // only a superuser changed (and can change) them
      await restoreCatalogAcl(client, relation, before ? before.catalogAcls[relation] ?? null : null);
    }
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  }
  const keptRoles: { role: string; reason: string }[] = [];
  for (const role of plan.roles) {
    try {
      await client.query(`drop role if exists ${id(role)}`);
    } catch (error) {
      const e = error as { message: string; detail?: string };
      keptRoles.push({ role, reason: e.detail ? e.detail.split("\n")[0]! : e.message });
    }
  }
  return { keptRoles };
}

/**
 * Grants what `beforeText` (an ACL as text; null = the object's default) held and the current
 * ACL lacks, and revokes what it did not hold. NULL ACLs are compared through acldefault().
 */
async function restoreAcl(client: pg.ClientBase, kind: "schema" | "database", target: string, beforeText: string | null, currentSql: string, params: unknown[]): Promise<void> {
  const { rows: now } = await client.query(currentSql, params);
  const owner = kind === "schema"
    ? "(select nspowner from pg_catalog.pg_namespace where nspname = $3)"
    : "(select datdba from pg_catalog.pg_database where datname = current_database())";
  const letter = kind === "schema" ? "n" : "d";
  const { rows } = await client.query(
    `with b as (select * from aclexplode(coalesce($1::aclitem[], acldefault('${letter}', ${owner})))),
          n as (select * from aclexplode(coalesce($2::aclitem[], acldefault('${letter}', ${owner}))))
     select 'grant' as op, privilege_type, case when grantee = 0 then 'public' else quote_ident(pg_get_userbyid(grantee)) end as who from (select grantee, privilege_type from b except select grantee, privilege_type from n) x
     union all
     select 'revoke', privilege_type, case when grantee = 0 then 'public' else quote_ident(pg_get_userbyid(grantee)) end from (select grantee, privilege_type from n except select grantee, privilege_type from b) y`,
    kind === "schema" ? [beforeText, now[0]?.acl ?? null, params[0]] : [beforeText, now[0]?.acl ?? null],
  );
  for (const r of rows) {
    await client.query(`${r.op} ${r.privilege_type} on ${kind} ${target} ${r.op === "grant" ? "to" : "from"} ${r.who}`);
  }
}

/** pg_foreign_server / pg_user_mappings: the relation's ACL as before, and no column grants. */
async function restoreCatalogAcl(client: pg.ClientBase, relation: string, beforeText: string | null): Promise<void> {
  const { rows: cols } = await client.query(
    "select string_agg(quote_ident(attname), ', ') as cols from pg_catalog.pg_attribute where attrelid = $1::regclass and attacl is not null",
    [relation],
  );
  if (cols[0].cols) await client.query(`revoke select (${cols[0].cols}) on ${relation} from public`);
  // Catalog relations' default ACL: readable by PUBLIC (what PostgreSQL's initdb grants).
  const { rows } = await client.query(
    `select exists (select from aclexplode(coalesce($1::aclitem[], '{=r/postgres}'::aclitem[])) where grantee = 0 and privilege_type = 'SELECT') as pub`,
    [beforeText],
  );
  await client.query(`${rows[0].pub ? "grant select on" : "revoke select on"} ${relation} ${rows[0].pub ? "to" : "from"} public`);
}
