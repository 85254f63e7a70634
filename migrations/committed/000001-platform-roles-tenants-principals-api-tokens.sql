--! Previous: -
--! Hash: sha1:711a1f93393168e3645fdb650488c744953c4c80
--! Message: platform: roles, tenants, principals, api tokens

-- Platform: roles, schemas, tenants, principals, API tokens.
-- Runs as the admin connection (a superuser, or a role with CREATEROLE and CREATE on the
-- database); objects are created as sextant_owner so nothing of Sextant's is owned by a
-- superuser.

-- Roles are cluster-wide (shadow and test databases share them): create each only once.
do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'sextant_owner') then
    create role sextant_owner nologin;
  end if;
  -- The server's login: it can only switch into tenant roles per transaction; NOINHERIT so
  -- that, outside a switch, it holds none of their privileges.
  if not exists (select from pg_catalog.pg_roles where rolname = 'sextant_authenticator') then
    create role sextant_authenticator login noinherit;
  end if;
  -- Group role granted to every tenant reader role; execute grants on the API go here.
  if not exists (select from pg_catalog.pg_roles where rolname = 'sextant_tenant_reader') then
    create role sextant_tenant_reader nologin;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'sextant_worker') then
    create role sextant_worker nologin;
  end if;
end
$$;

-- The admin must be able to act as the owner (a CREATEROLE admin on PG16+ does not get SET
-- on roles it creates by default).
grant sextant_owner to current_user;
do $$
begin
  execute format('grant create, connect on database %I to sextant_owner', current_database());
  execute format('grant connect on database %I to sextant_authenticator', current_database());
end
$$;

-- Tenant roles must not create objects anywhere by default.
revoke create on schema public from public;

set local role sextant_owner;

create schema if not exists sextant;
create schema if not exists sextant_private;
comment on schema sextant is E'Sextant''s public API: catalog views, tools and tenant-scoped tables.';
comment on schema sextant_private is E'Sextant internals and secrets; never exposed.';
revoke all on schema sextant_private from public;
grant usage on schema sextant to sextant_tenant_reader, sextant_authenticator;
-- The authenticator resolves API tokens through one SECURITY DEFINER function here.
grant usage on schema sextant_private to sextant_authenticator;

-- The current tenant comes from the current role (a tenant reader role, or a login role that
-- inherits one), never from a setting that SQL could overwrite. Tenant reader roles are the
-- direct members of sextant_tenant_reader and are named sextant_t_<slug>. Null for a role
-- that reaches no tenant or several (an admin).
create or replace function sextant.current_tenant()
returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select case when count(*) = 1 then min(substr(r.rolname, 11)) end
  from pg_catalog.pg_auth_members as m
  join pg_catalog.pg_roles as r on r.oid = m.member
  where m.roleid = 'sextant_tenant_reader'::regrole
    and r.rolname like 'sextant\_t\_%'
    and pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')
    and not exists (select from pg_catalog.pg_roles as s where s.rolname = current_user and s.rolsuper);
$$;
comment on function sextant.current_tenant() is
  E'The tenant of the current database role (slug), or null. Derived from role membership only.';

-- Access level inside the tenant: the reader role is viewer; sextant_t_<slug>__analyst and
-- sextant_t_<slug>__admin are roles layered on top of it.
create or replace function sextant.current_access_level()
returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select case
    when t is null then null
    when pg_catalog.to_regrole('sextant_t_' || t || '__admin') is not null
      and pg_catalog.pg_has_role(current_user, ('sextant_t_' || t || '__admin')::regrole, 'USAGE') then 'admin'
    when pg_catalog.to_regrole('sextant_t_' || t || '__analyst') is not null
      and pg_catalog.pg_has_role(current_user, ('sextant_t_' || t || '__analyst')::regrole, 'USAGE') then 'analyst'
    else 'viewer'
  end
  from (select sextant.current_tenant() as t) as cur;
$$;
comment on function sextant.current_access_level() is
  E'viewer, analyst or admin: the current role''s level in its tenant, from role membership.';

create table if not exists sextant.tenants (
  slug text primary key
    check (slug ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$' and length(slug) <= 40),
  display_name text not null check (length(display_name) between 1 and 200),
  reader_role name not null unique,
  max_rows integer not null default 500 check (max_rows between 1 and 100000),
  statement_timeout_ms integer not null default 15000 check (statement_timeout_ms between 100 and 600000),
  -- Optional table filters, as 'schema.table' patterns (LIKE syntax).
  allowed_tables text[] not null default '{}',
  excluded_tables text[] not null default '{}',
  created_at timestamptz not null default now()
);
comment on table sextant.tenants is E'A tenant: a team whose schemas Sextant serves, with its limits.';
alter table sextant.tenants enable row level security;
drop policy if exists select_own_tenant on sextant.tenants;
create policy select_own_tenant on sextant.tenants
  for select using (slug = (select sextant.current_tenant()));
grant select on sextant.tenants to sextant_tenant_reader;

create table if not exists sextant.tenant_schemas (
  schema_name name primary key,
  tenant_slug text not null references sextant.tenants on delete cascade,
  -- provisioned: created by Sextant for the tenant; otherwise an existing schema mapped to it.
  provisioned boolean not null default false,
  expires_at timestamptz,
  created_at timestamptz not null default now()
);
create index if not exists tenant_schemas_tenant_idx on sextant.tenant_schemas (tenant_slug);
comment on table sextant.tenant_schemas is E'The schemas a tenant owns or has been given.';
alter table sextant.tenant_schemas enable row level security;
drop policy if exists select_own_tenant on sextant.tenant_schemas;
create policy select_own_tenant on sextant.tenant_schemas
  for select using (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.tenant_schemas to sextant_tenant_reader;

create table if not exists sextant.principals (
  id uuid primary key default gen_random_uuid(),
  tenant_slug text not null references sextant.tenants on delete cascade,
  name text not null check (length(name) between 1 and 200),
  kind text not null default 'person' check (kind in ('person', 'agent')),
  access_level text not null default 'viewer' check (access_level in ('viewer', 'analyst', 'admin')),
  created_at timestamptz not null default now(),
  unique (tenant_slug, name)
);
comment on table sextant.principals is E'A person or agent of a tenant, with an access level.';
alter table sextant.principals enable row level security;
drop policy if exists select_own_tenant on sextant.principals;
create policy select_own_tenant on sextant.principals
  for select using (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.principals to sextant_tenant_reader;

-- Only a hash of each token is kept; the prefix identifies a token in lists and logs.
create table if not exists sextant_private.api_tokens (
  id uuid primary key default gen_random_uuid(),
  principal_id uuid not null references sextant.principals on delete cascade,
  prefix text not null unique,
  token_hash bytea not null,
  access_level text not null default 'viewer' check (access_level in ('viewer', 'analyst', 'admin')),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  created_at timestamptz not null default now()
);
create index if not exists api_tokens_principal_idx on sextant_private.api_tokens (principal_id);

-- Installation-wide secrets (e.g. the authenticator's generated password).
create table if not exists sextant_private.settings (
  key text primary key,
  value text not null
);

-- What a verified API token or JWT resolves to.
do $$
begin
  if to_regtype('sextant_private.token_principal') is null then
    create type sextant_private.token_principal as (
      token_id uuid,
      principal_id uuid,
      principal_name text,
      tenant_slug text,
      access_level text,
      db_role text,
      expires_at timestamptz
    );
  end if;
end
$$;

reset role;
