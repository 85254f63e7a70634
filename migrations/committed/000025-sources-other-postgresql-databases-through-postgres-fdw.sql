--! Previous: sha1:e821ea86bdb3250e9bdab9b5992d711e35b7e07c
--! Hash: sha1:2971a371e3bd6b3cbd08a0129626d68accf06811
--! Message: sources: a tenant's data in other PostgreSQL databases, through postgres_fdw

-- postgres_fdw ships in PostgreSQL's contrib; creating it needs a superuser (it is not a
-- trusted extension). An admin that is not one is told what to run; `sextant source add` then
-- says the extension is missing. Its handler functions live in sextant_private, out of reach
-- of tenant roles.
do $$
begin
  if exists (select from pg_catalog.pg_extension where extname = 'postgres_fdw') then
    return;
  end if;
  if not exists (select from pg_catalog.pg_available_extensions where name = 'postgres_fdw') then
    raise warning 'sources: postgres_fdw is not available on this PostgreSQL; install its contrib package to use `sextant source add`';
  elsif not (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
    raise warning 'sources: only a superuser can run `create extension postgres_fdw schema sextant_private`; run it once to use `sextant source add`';
  else
    create extension postgres_fdw schema sextant_private;
  end if;
end
$$;

-- Two catalog facts that would let any role read another tenant's source (checked on
-- PostgreSQL 15-18): pg_foreign_server's srvoptions (host, port, database) are readable by
-- PUBLIC, and pg_user_mappings lists every mapping's server and role to PUBLIC (its options,
-- the password included, to the mapped role itself). Sextant reads neither through SQL
-- (postgres_fdw uses the system caches), so PUBLIC keeps only the non-secret columns of the
-- first and loses the second. Needs the catalogs' owner, a superuser.
do $$
begin
  if not (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
    raise warning 'sources: only a superuser can revoke SELECT on pg_catalog.pg_foreign_server (srvoptions) and pg_catalog.pg_user_mappings from PUBLIC; run this migration''s second step as one';
    return;
  end if;
  revoke select on pg_catalog.pg_foreign_server from public;
  grant select (oid, srvname, srvowner, srvfdw, srvtype, srvversion, srvacl) on pg_catalog.pg_foreign_server to public;
  revoke select on pg_catalog.pg_user_mappings from public;
end
$$;

set local role sextant_owner;

-- One row per source: where it is (no password: that lives only in the user mapping) and how
-- its last refresh went. Tenants read their own rows (list_databases); only the operator's
-- functions in sextant_private write them.
create table if not exists sextant.sources (
  tenant_slug text not null references sextant.tenants (slug) on delete cascade,
  name text not null check (name ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$' and length(name) <= 30),
  server_name text not null unique,
  host text not null,
  port integer not null check (port between 1 and 65535),
  dbname text not null,
  remote_user text not null,
  sslmode text check (sslmode in ('disable', 'prefer', 'require', 'verify-ca', 'verify-full')),
  remote_schemas text[] not null check (cardinality(remote_schemas) between 1 and 20),
  server_version text,
  status text not null default 'new' check (status in ('new', 'ok', 'failed')),
  last_error text,
  last_refreshed_at timestamptz,
  table_count integer not null default 0,
  created_at timestamptz not null default now(),
  primary key (tenant_slug, name)
);
comment on table sextant.sources is
  E'@behavior -list -connection\nOther PostgreSQL databases a tenant reads through postgres_fdw (added by an operator).';
alter table sextant.sources enable row level security;
drop policy if exists select_own_tenant on sextant.sources;
create policy select_own_tenant on sextant.sources for select
  using (tenant_slug = sextant.current_tenant());
grant select on sextant.sources to sextant_tenant_reader;

-- The tables each refresh found, with what the remote catalog said about them.
create table if not exists sextant.source_tables (
  tenant_slug text not null,
  source_name text not null,
  remote_schema text not null,
  table_name text not null,
  local_schema text not null,
  column_count integer not null,
  -- From the remote catalog at refresh time (comments are shown on the views too).
  description text,
  estimated_rows bigint,
  primary_key text[] not null default '{}',
  refreshed_at timestamptz not null default now(),
  primary key (tenant_slug, source_name, remote_schema, table_name),
  foreign key (tenant_slug, source_name) references sextant.sources (tenant_slug, name) on delete cascade
);
comment on table sextant.source_tables is
  E'@behavior -list -connection\nThe remote tables and views each source imported at its last refresh.';
alter table sextant.source_tables enable row level security;
drop policy if exists select_own_tenant on sextant.source_tables;
create policy select_own_tenant on sextant.source_tables for select
  using (tenant_slug = sextant.current_tenant());
grant select on sextant.source_tables to sextant_tenant_reader;

reset role;
