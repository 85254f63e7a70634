--! Previous: sha1:fb86f5d965e8be0bac26264a4089ac5e08bbc78b
--! Hash: sha1:83ca57f451229fc7f515f70d6791ce8b7208d4b0
--! Message: dbt: projects and nodes, search indexes

-- dbt knowledge base: projects and their nodes (models, sources, seeds, snapshots, tests,
-- exposures, metrics, semantic models), tenant-scoped, with search indexes.

-- Trigram similarity for typo-tolerant search (trusted extension: CREATE on the database suffices).
create extension if not exists pg_trgm with schema public;

set local role sextant_owner;

create table if not exists sextant.dbt_projects (
  id uuid primary key default gen_random_uuid(),
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  project_name text not null check (length(project_name) between 1 and 200),
  dbt_version text,
  manifest_schema text,
  generated_at timestamptz,
  invocation_id text,
  loaded_at timestamptz not null default now(),
  source text,
  unique (tenant_slug, project_name)
);
comment on table sextant.dbt_projects is E'A dbt project loaded for a tenant (one version at a time).';
alter table sextant.dbt_projects enable row level security;
drop policy if exists select_own_tenant on sextant.dbt_projects;
create policy select_own_tenant on sextant.dbt_projects
  for select using (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.dbt_projects to sextant_tenant_reader;

create table if not exists sextant.dbt_nodes (
  project_id uuid not null references sextant.dbt_projects on delete cascade,
  tenant_slug text not null,
  unique_id text not null,
  name text not null,
  resource_type text not null,
  package_name text,
  database_name text,
  schema_name text,
  alias text,
  relation_name text,
  materialization text,
  description text,
  -- [{name, description, data_type, catalog_type, tests: [...], meta}] in manifest order
  columns jsonb not null default '[]',
  raw_code text,
  compiled_code text,
  tags text[] not null default '{}',
  meta jsonb not null default '{}',
  owner text,
  file_path text,
  depends_on text[] not null default '{}',
  last_run_status text,
  last_run_at timestamptz,
  last_run_seconds numeric,
  catalog_stats jsonb,
  -- name (A), description (B), columns (C), tags and SQL (D); computed at load
  search tsvector,
  primary key (project_id, unique_id)
);
create index if not exists dbt_nodes_search_idx on sextant.dbt_nodes using gin (search);
create index if not exists dbt_nodes_name_trgm_idx on sextant.dbt_nodes using gin (name public.gin_trgm_ops);
create index if not exists dbt_nodes_depends_on_idx on sextant.dbt_nodes using gin (depends_on);
create index if not exists dbt_nodes_tenant_name_idx on sextant.dbt_nodes (tenant_slug, name);
create index if not exists dbt_nodes_relation_idx on sextant.dbt_nodes (tenant_slug, lower(schema_name), lower(alias));
comment on table sextant.dbt_nodes is E'Nodes of the tenant''s dbt projects, with docs, columns, SQL and lineage.';
alter table sextant.dbt_nodes enable row level security;
drop policy if exists select_own_tenant on sextant.dbt_nodes;
create policy select_own_tenant on sextant.dbt_nodes
  for select using (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.dbt_nodes to sextant_tenant_reader;

-- Items of a load in progress (streamed in batches, inside the loading transaction).
create unlogged table if not exists sextant_private.dbt_load_items (
  load_id uuid not null,
  kind text not null check (kind in ('metadata', 'node', 'catalog_node', 'run_result')),
  item jsonb not null
);
create index if not exists dbt_load_items_load_idx on sextant_private.dbt_load_items (load_id, kind);

do $$
begin
  if to_regtype('sextant.dbt_search_hit') is null then
    create type sextant.dbt_search_hit as (
      project_name text,
      unique_id text,
      name text,
      resource_type text,
      relation_name text,
      description text,
      score double precision,
      matched_fields text[]
    );
  end if;
  if to_regtype('sextant.dbt_model_details') is null then
    create type sextant.dbt_model_details as (
      project_name text,
      unique_id text,
      name text,
      resource_type text,
      materialization text,
      relation_name text,
      description text,
      columns jsonb,
      sql text,
      sql_is_compiled boolean,
      tags text[],
      owner text,
      file_path text,
      last_run_status text,
      last_run_at timestamptz,
      upstream jsonb,
      downstream jsonb,
      exposures jsonb,
      tests jsonb
    );
  end if;
end
$$;

reset role;
