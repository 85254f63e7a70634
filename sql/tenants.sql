-- Area: tenants. Called by the CLI (`sextant tenant create|list`, `sextant analyst create`)
-- over the admin connection; nothing here is granted to tenant roles.
-- Invariants:
--   * a tenant <slug> has three NOLOGIN roles: sextant_t_<slug> (viewer: USAGE + SELECT on its
--     schemas), sextant_t_<slug>__analyst and sextant_t_<slug>__admin layered on top of it;
--   * the authenticator may SET ROLE to each but inherits none (NOINHERIT);
--   * a schema belongs to at most one tenant.
-- These functions run with the caller's rights (CREATEROLE is needed), hence sextant_private.

set role sextant_owner;

-- SECURITY DEFINER: the authenticator resolves JWT claims to a role without reading tenants.
create or replace function sextant_private.tenant_role(slug text, access_level text)
returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_role text := 'sextant_t_' || slug
    || case access_level when 'viewer' then '' when 'analyst' then '__analyst' when 'admin' then '__admin' end;
begin
  if sextant.level_rank(access_level) is null then
    raise exception 'access level % is not one of viewer, analyst, admin', coalesce(access_level, 'null')
      using errcode = 'SX400';
  end if;
  if not exists (select from sextant.tenants as t where t.slug = tenant_role.slug) then
    raise exception 'tenant % does not exist', slug
      using errcode = 'SX404', hint = 'Run `sextant tenant list` to see the tenants.';
  end if;
  return v_role;
end
$$;
comment on function sextant_private.tenant_role(text, text) is
  E'The database role for a tenant and access level; raises SX404 for an unknown tenant.';
revoke all on function sextant_private.tenant_role(text, text) from public;
grant execute on function sextant_private.tenant_role(text, text) to sextant_authenticator;

-- A schema of the user's own database may be owned by another role (the one dbt builds with,
-- or pg_database_owner for public) and filled by several. The admin running this must be able
-- to grant on what is there (owner, member of the owners, or superuser) and to set default
-- privileges for each role that creates tables there (member of it, or superuser): checked
-- first, so nothing is half-granted (GRANT ... ON ALL TABLES only warns for tables it skips).
create or replace function sextant_private.map_schema(slug text, schema_name text, table_owners text[])
returns sextant.tenant_schemas
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reader text := 'sextant_t_' || slug;
  v_created boolean := false;
  v_row sextant.tenant_schemas;
  v_missing text;
  v_acl_before text;
begin
  if schema_name is null or schema_name !~ '^[a-z_][a-z0-9_]*$' or length(schema_name) > 63 then
    raise exception 'schema name % is not a plain lower-case identifier', coalesce(schema_name, 'null')
      using errcode = 'SX400', hint = 'Use letters, digits and underscores, starting with a letter.';
  end if;
  if schema_name in ('sextant', 'sextant_private', 'sextant_exec', 'information_schema')
     or schema_name like 'pg\_%' or schema_name like 'graphile\_%' then
    raise exception 'schema % is reserved and cannot belong to a tenant', schema_name
      using errcode = 'SX400';
  end if;
  if exists (select from sextant.tenant_schemas as s
             where s.schema_name = map_schema.schema_name and s.tenant_slug <> slug) then
    raise exception 'schema % already belongs to another tenant', schema_name
      using errcode = 'SX409';
  end if;
  select string_agg(r, ', ') into v_missing from unnest(table_owners) as r where to_regrole(r) is null;
  if v_missing is not null then
    raise exception 'role % does not exist', v_missing using errcode = 'SX404';
  end if;
  if not exists (select from pg_catalog.pg_namespace where nspname = schema_name) then
    execute format('create schema %I authorization sextant_owner', schema_name);
    v_created := true;
  end if;
  -- What uninstall puts back (kept from the first mapping; a created schema has nothing to restore).
  select case when v_created then null else coalesce(n.nspacl::text, '') end into v_acl_before
  from pg_catalog.pg_namespace as n where n.nspname = schema_name;
  v_acl_before := coalesce((select s.acl_before from sextant.tenant_schemas as s where s.schema_name = map_schema.schema_name), v_acl_before);
  if not has_schema_privilege(schema_name, 'USAGE WITH GRANT OPTION') then
    raise exception 'you (%) cannot grant on schema %, owned by %', current_user, schema_name,
        (select pg_get_userbyid(nspowner) from pg_catalog.pg_namespace where nspname = schema_name)
      using errcode = 'SX403',
            hint = 'Run this as the schema''s owner, a member of it (grant <owner> to <you>), or a superuser.';
  end if;
  select string_agg(distinct pg_get_userbyid(c.relowner), ', ') into v_missing
  from pg_catalog.pg_class as c
  where c.relnamespace = schema_name::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
    and not has_table_privilege(c.oid, 'SELECT WITH GRANT OPTION');
  if v_missing is not null then
    raise exception 'you (%) cannot grant on some tables of schema %, owned by %', current_user, schema_name, v_missing
      using errcode = 'SX403', hint = 'Make yourself a member of those roles (grant <role> to <you>) or run this as a superuser.';
  end if;

  execute format('grant usage on schema %I to %I', schema_name, v_reader);
  -- Nobody but its owner creates objects in a tenant's schema (a schema that existed before
  -- may have granted CREATE to PUBLIC, as public did before PostgreSQL 15).
  execute format('revoke create on schema %I from public', schema_name);
  execute format('grant select on all tables in schema %I to %I', schema_name, v_reader);
  -- SELECT only: USAGE would allow nextval(), a write any read-write transaction could make.
  execute format('grant select on all sequences in schema %I to %I', schema_name, v_reader);
  insert into sextant.tenant_schemas (schema_name, tenant_slug, provisioned, table_owners, acl_before)
  values (schema_name, slug, v_created, coalesce(table_owners, '{}'), v_acl_before)
  on conflict on constraint tenant_schemas_pkey do update
    set tenant_slug = excluded.tenant_slug,
        table_owners = array(select distinct r from unnest(tenant_schemas.table_owners || excluded.table_owners) as r order by r)
  returning * into v_row;
  -- Tables created later: default privileges (apply_table_filters sets or withholds them).
  perform sextant_private.apply_table_filters(slug);
  return v_row;
end
$$;
comment on function sextant_private.map_schema(text, text, text[]) is
  E'Gives a tenant read access to a schema (creating it when it does not exist), including tables that its owner, `table_owners` and Sextant create later.';
revoke all on function sextant_private.map_schema(text, text, text[]) from public;

create or replace function sextant_private.map_schema(slug text, schema_name text)
returns sextant.tenant_schemas
language sql volatile
set search_path = pg_catalog, pg_temp
as $$ select sextant_private.map_schema(slug, schema_name, '{}'::text[]) $$;
comment on function sextant_private.map_schema(text, text) is
  E'Gives a tenant read access to a schema, creating it when it does not exist.';
revoke all on function sextant_private.map_schema(text, text) from public;

-- The roles whose new tables in a tenant's schema the tenant reads: the schema's owner (unless
-- a built-in role such as pg_database_owner, which creates nothing itself), the owners of its
-- tables today, the roles named when it was mapped, Sextant's owner and the installing admin.
create or replace function sextant_private.schema_table_creators(schema_name text)
returns setof text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select r from (
    select pg_get_userbyid(n.nspowner) as r from pg_catalog.pg_namespace as n where n.nspname = schema_name
    union
    select pg_get_userbyid(c.relowner) from pg_catalog.pg_class as c
    where c.relnamespace = to_regnamespace(schema_name) and c.relkind in ('r', 'p', 'v', 'm', 'f')
    union
    select o from sextant.tenant_schemas as s, unnest(s.table_owners) as o
    where s.schema_name = schema_table_creators.schema_name and to_regrole(o) is not null
    union
    select 'sextant_owner'
    union
    select current_user::text
  ) as c
  where c.r !~ '^pg_'
$$;
revoke all on function sextant_private.schema_table_creators(text) from public;

-- Layer 1 of the query path: the allow/deny lists become privileges, so every door (and psql)
-- obeys them. Patterns are 'schema.table' with LIKE wildcards; an empty allow list allows all.
create or replace function sextant_private.apply_table_filters(slug text)
returns integer
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant sextant.tenants;
  v_table record;
  v_denied integer := 0;
  v_filtered boolean;
begin
  select * into v_tenant from sextant.tenants as t where t.slug = apply_table_filters.slug;
  if v_tenant.slug is null then
    raise exception 'tenant % does not exist', slug using errcode = 'SX404';
  end if;
  v_filtered := cardinality(v_tenant.allowed_tables) > 0 or cardinality(v_tenant.excluded_tables) > 0;
  for v_table in
    select n.nspname as schema_name, c.relname as table_name,
           (cardinality(v_tenant.allowed_tables) > 0
              and not exists (select from unnest(v_tenant.allowed_tables) as p where n.nspname || '.' || c.relname like p))
           or exists (select from unnest(v_tenant.excluded_tables) as p where n.nspname || '.' || c.relname like p) as denied
    from pg_catalog.pg_class as c
    join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    join sextant.tenant_schemas as s on s.schema_name = n.nspname and s.tenant_slug = v_tenant.slug
    where c.relkind in ('r', 'p', 'v', 'm', 'f')
  loop
    if v_table.denied then
      execute format('revoke select on %I.%I from %I', v_table.schema_name, v_table.table_name, v_tenant.reader_role);
      v_denied := v_denied + 1;
    else
      execute format('grant select on %I.%I to %I', v_table.schema_name, v_table.table_name, v_tenant.reader_role);
    end if;
  end loop;
  -- Tables created later: readable at once through default privileges for each role that
  -- creates them; while the tenant has an allow or deny list, those defaults are withheld (a
  -- new table could be one the lists hide) and new tables wait for the next filter run
  -- (`sextant tenant update`, `sextant migrate`): fail closed. Roles the admin cannot act for
  -- are skipped here; map_schema refuses them up front.
  for v_table in
    select s.schema_name, c.creator
    from sextant.tenant_schemas as s, sextant_private.schema_table_creators(s.schema_name) as c(creator)
    where s.tenant_slug = v_tenant.slug and to_regnamespace(s.schema_name) is not null
      and pg_catalog.pg_has_role(c.creator, 'USAGE')
  loop
    execute format('alter default privileges for role %I in schema %I %s select on tables %s %I',
      v_table.creator, v_table.schema_name,
      case when v_filtered then 'revoke' else 'grant' end, case when v_filtered then 'from' else 'to' end,
      v_tenant.reader_role);
  end loop;
  return v_denied;
end
$$;
comment on function sextant_private.apply_table_filters(text) is
  E'Grants SELECT on a tenant''s tables except those its allow/deny lists exclude; returns how many are excluded.';
revoke all on function sextant_private.apply_table_filters(text) from public;

create or replace function sextant_private.create_tenant(slug text, display_name text, schema_names text[], table_owners text[])
returns sextant.tenants
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reader text := 'sextant_t_' || slug;
  v_row sextant.tenants;
  v_schema text;
begin
  if slug is null or slug !~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$' or length(slug) > 40 or slug like 'sextant%' then
    raise exception 'tenant slug % is invalid', coalesce(slug, 'null')
      using errcode = 'SX400',
            hint = 'Use up to 40 lower-case letters and digits, single underscores between words, starting with a letter (not "sextant").';
  end if;
  if exists (select from sextant.tenants as t where t.slug = create_tenant.slug) then
    raise exception 'tenant % already exists', slug using errcode = 'SX409';
  end if;
  -- Roles may survive from a tenant in another database of the same cluster.
  if to_regrole(v_reader) is null then
    execute format('create role %I nologin', v_reader);
  end if;
  if to_regrole(v_reader || '__analyst') is null then
    execute format('create role %I nologin', v_reader || '__analyst');
  end if;
  if to_regrole(v_reader || '__admin') is null then
    execute format('create role %I nologin', v_reader || '__admin');
  end if;
  execute format('grant sextant_tenant_reader to %I', v_reader);
  execute format('grant %I to %I', v_reader, v_reader || '__analyst');
  execute format('grant %I to %I', v_reader || '__analyst', v_reader || '__admin');
  execute format('grant %I, %I, %I to sextant_authenticator', v_reader, v_reader || '__analyst', v_reader || '__admin');
  -- Defaults for sessions that log in with this role directly (SET ROLE does not apply them;
  -- the server sets the same limits per transaction).
  execute format('alter role %I set default_transaction_read_only = on', v_reader);
  execute format('alter role %I set statement_timeout = 15000', v_reader);

  insert into sextant.tenants (slug, display_name, reader_role)
  values (slug, coalesce(nullif(display_name, ''), slug), v_reader)
  returning * into v_row;

  foreach v_schema in array coalesce(schema_names, '{}') loop
    perform sextant_private.map_schema(slug, v_schema, table_owners);
  end loop;
  perform sextant_private.install_query_runner(slug);  -- sql/query.sql
  perform sextant_private.install_builder(slug);  -- sql/materialize_models.sql
  return v_row;
end
$$;
comment on function sextant_private.create_tenant(text, text, text[], text[]) is
  E'Creates a tenant, its roles, and maps (or creates) its schemas; tables that `table_owners` create there later are readable too.';
revoke all on function sextant_private.create_tenant(text, text, text[], text[]) from public;

create or replace function sextant_private.create_tenant(slug text, display_name text, schema_names text[])
returns sextant.tenants
language sql volatile
set search_path = pg_catalog, pg_temp
as $$ select sextant_private.create_tenant(slug, display_name, schema_names, '{}'::text[]) $$;
comment on function sextant_private.create_tenant(text, text, text[]) is
  E'Creates a tenant, its roles, and maps (or creates) its schemas.';
revoke all on function sextant_private.create_tenant(text, text, text[]) from public;

create or replace function sextant_private.create_analyst_login(slug text, login text, password text)
returns text
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reader text := sextant_private.tenant_role(slug, 'viewer');
  v_timeout integer := (select t.statement_timeout_ms from sextant.tenants as t where t.slug = create_analyst_login.slug);
begin
  if login is null or login !~ '^[a-z][a-z0-9_]*$' or length(login) > 63 or login like 'sextant\_%' then
    raise exception 'login name % is invalid', coalesce(login, 'null')
      using errcode = 'SX400',
            hint = 'Use lower-case letters, digits and underscores, starting with a letter; names starting with sextant_ are reserved.';
  end if;
  if to_regrole(login) is not null then
    raise exception 'role % already exists', login using errcode = 'SX409';
  end if;
  if length(coalesce(password, '')) < 16 then
    raise exception 'password is too short' using errcode = 'SX400';
  end if;
  execute format('create role %I login password %L in role %I', login, password, v_reader);
  -- Read-only by default; privileges are what actually keep the login read-only.
  execute format('alter role %I set default_transaction_read_only = on', login);
  execute format('alter role %I set statement_timeout = %s', login, v_timeout);
  execute format('grant connect on database %I to %I', current_database(), login);
  return login;
end
$$;
comment on function sextant_private.create_analyst_login(text, text, text) is
  E'Creates a psql LOGIN role for a person, member of the tenant''s reader role.';
revoke all on function sextant_private.create_analyst_login(text, text, text) from public;

-- Migration 000121 added the CHECK that every sensitive-column pattern compiles on its own as
-- NOT VALID (rows stored before it were not checked). Once no stored row fails it, it is
-- validated here (this file runs after every upgrade), so PostgreSQL holds it for every row;
-- until then `sextant migrate` and `sextant serve` name the tenants to fix (src/install.ts).
do $$
begin
  if exists (select from pg_catalog.pg_constraint as c
              where c.conrelid = 'sextant.tenants'::regclass and c.conname = 'tenants_sensitive_column_patterns_compile'
                and not c.convalidated)
     and not exists (select from sextant.tenants as t where not sextant_private.patterns_compile(t.sensitive_column_patterns)) then
    alter table sextant.tenants validate constraint tenants_sensitive_column_patterns_compile;
  end if;
end
$$;

reset role;
