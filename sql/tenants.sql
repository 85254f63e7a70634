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

create or replace function sextant_private.map_schema(slug text, schema_name text)
returns sextant.tenant_schemas
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reader text := 'sextant_t_' || slug;
  v_created boolean := false;
  v_row sextant.tenant_schemas;
begin
  if schema_name is null or schema_name !~ '^[a-z_][a-z0-9_]*$' or length(schema_name) > 63 then
    raise exception 'schema name % is not a plain lower-case identifier', coalesce(schema_name, 'null')
      using errcode = 'SX400', hint = 'Use letters, digits and underscores, starting with a letter.';
  end if;
  if schema_name in ('sextant', 'sextant_private', 'public', 'information_schema')
     or schema_name like 'pg\_%' or schema_name like 'graphile\_%' then
    raise exception 'schema % is reserved and cannot belong to a tenant', schema_name
      using errcode = 'SX400';
  end if;
  if exists (select from sextant.tenant_schemas as s
             where s.schema_name = map_schema.schema_name and s.tenant_slug <> slug) then
    raise exception 'schema % already belongs to another tenant', schema_name
      using errcode = 'SX409';
  end if;
  if not exists (select from pg_catalog.pg_namespace where nspname = schema_name) then
    execute format('create schema %I authorization sextant_owner', schema_name);
    v_created := true;
  end if;
  execute format('grant usage on schema %I to %I', schema_name, v_reader);
  -- Nobody but its owner creates objects in a tenant's schema (a schema that existed before
  -- may have granted CREATE to PUBLIC).
  execute format('revoke create on schema %I from public', schema_name);
  execute format('grant select on all tables in schema %I to %I', schema_name, v_reader);
  -- SELECT only: USAGE would allow nextval(), a write any read-write transaction could make.
  execute format('grant select on all sequences in schema %I to %I', schema_name, v_reader);
  -- Tables created later by the owner or by this admin are readable too.
  execute format('alter default privileges for role sextant_owner in schema %I grant select on tables to %I',
    schema_name, v_reader);
  execute format('alter default privileges in schema %I grant select on tables to %I', schema_name, v_reader);
  insert into sextant.tenant_schemas (schema_name, tenant_slug, provisioned)
  values (schema_name, slug, v_created)
  on conflict on constraint tenant_schemas_pkey do update set tenant_slug = excluded.tenant_slug
  returning * into v_row;
  perform sextant_private.apply_table_filters(slug);
  return v_row;
end
$$;
comment on function sextant_private.map_schema(text, text) is
  E'Gives a tenant read access to a schema, creating it when it does not exist.';
revoke all on function sextant_private.map_schema(text, text) from public;

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
begin
  select * into v_tenant from sextant.tenants as t where t.slug = apply_table_filters.slug;
  if v_tenant.slug is null then
    raise exception 'tenant % does not exist', slug using errcode = 'SX404';
  end if;
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
  return v_denied;
end
$$;
comment on function sextant_private.apply_table_filters(text) is
  E'Grants SELECT on a tenant''s tables except those its allow/deny lists exclude; returns how many are excluded.';
revoke all on function sextant_private.apply_table_filters(text) from public;

create or replace function sextant_private.create_tenant(slug text, display_name text, schema_names text[])
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
    perform sextant_private.map_schema(slug, v_schema);
  end loop;
  perform sextant_private.install_query_runner(slug);  -- sql/query.sql
  perform sextant_private.install_builder(slug);  -- sql/materialize.sql
  return v_row;
end
$$;
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

reset role;
