--! Previous: sha1:8c3a149265e4897bb950ab8991fe0624a7ea4ff2
--! Hash: sha1:99a8370bb23eca9d07a812b22c6c82b4a0605d0d
--! Message: materialization: pipelines, models, runs, secrets, provisioned schemas, freshness

-- Materialization: provisioned schemas, pipelines (source + entities + dbt-style models),
-- runs on graphile-worker, encrypted source secrets, and the freshness of every table a
-- pipeline produced. Tenants write through RLS policies; the privileged parts (creating
-- schemas, enqueueing jobs, encrypting secrets) happen in SECURITY DEFINER triggers that
-- trust only the row RLS has already checked.

-- pgp_sym_encrypt for source secrets (trusted extension).
create extension if not exists pgcrypto with schema public;

-- The worker process logs in as the admin and works as sextant_worker.
grant sextant_worker to current_user;
do $$
begin
  execute format('grant connect on database %I to sextant_worker', current_database());
end
$$;

set local role sextant_owner;

grant usage on schema sextant to sextant_worker;
grant usage on schema sextant_private to sextant_worker;

-- The key that encrypts source secrets, generated once per installation.
insert into sextant_private.settings (key, value)
values ('secret_key', encode(gen_random_bytes(32), 'base64'))
on conflict (key) do nothing;

-- Provisioned schemas: tenants (analysts and admins) insert and delete their own rows; the
-- triggers in sql/materialize.sql create and drop the schema itself.
drop policy if exists provision_own on sextant.tenant_schemas;
create policy provision_own on sextant.tenant_schemas for insert
  with check (tenant_slug = (select sextant.current_tenant())
              and provisioned
              and (select sextant.current_access_level()) in ('analyst', 'admin')
              and schema_name like 't\_' || replace(tenant_slug, '_', '\_') || '\_\_%');
drop policy if exists teardown_own on sextant.tenant_schemas;
create policy teardown_own on sextant.tenant_schemas for delete
  using (tenant_slug = (select sextant.current_tenant())
         and provisioned
         and (select sextant.current_access_level()) in ('analyst', 'admin'));
grant insert (schema_name, tenant_slug, provisioned, expires_at), delete on sextant.tenant_schemas to sextant_tenant_reader;

create table if not exists sextant.pipelines (
  id bigint primary key generated always as identity,
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  name text not null check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  description text check (length(description) <= 5000),
  target_schema name not null references sextant.tenant_schemas (schema_name) on delete restrict,
  -- {"kind": "http"|"csv"|"postgres", ...options}; secret values never appear here.
  source jsonb not null check (jsonb_typeof(source) = 'object'),
  -- [{"name": "orders", ...entity options}]
  entities jsonb not null check (jsonb_typeof(entities) = 'array' and jsonb_array_length(entities) between 1 and 100),
  schedule text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  updated_by text default nullif(current_setting('jwt.claims.sub', true), ''),
  unique (tenant_slug, name)
);
comment on table sextant.pipelines is E'A pipeline: a source, the entities loaded from it, and SQL models built on them.';

create table if not exists sextant.pipeline_models (
  pipeline_id bigint not null references sextant.pipelines on delete cascade,
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  name text not null check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  materialized text not null default 'table' check (materialized in ('table', 'view')),
  raw_sql text not null check (length(raw_sql) between 1 and 200000),
  description text,
  -- [{"name": ..., "description": ..., "tests": [...]}]
  columns jsonb not null default '[]' check (jsonb_typeof(columns) = 'array'),
  refs text[] not null default '{}',
  sources text[] not null default '{}',
  build_order integer not null default 0,
  primary key (pipeline_id, name)
);
comment on table sextant.pipeline_models is E'The SQL models (dbt-style) of a pipeline, in build order.';

-- Written only through sextant.set_pipeline_secret; nobody but the worker reads it decrypted.
create table if not exists sextant_private.pipeline_secrets (
  pipeline_id bigint not null references sextant.pipelines on delete cascade,
  name text not null check (name ~ '^[A-Za-z][A-Za-z0-9_]{0,62}$'),
  ciphertext bytea not null,
  updated_at timestamptz not null default now(),
  primary key (pipeline_id, name)
);

create table if not exists sextant.materialization_runs (
  id bigint primary key generated always as identity,
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  pipeline_id bigint not null references sextant.pipelines on delete cascade,
  status text not null default 'queued' check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  entities text[],
  trigger text not null default 'manual' check (trigger in ('manual', 'schedule')),
  requested_by text default nullif(current_setting('jwt.claims.sub', true), ''),
  current_step text,
  -- {"orders": {"rows": 1200, "pages": 12, "done": true}, ...}
  progress jsonb not null default '{}',
  error text,
  attempts integer not null default 0,
  cancel_requested boolean not null default false,
  worker_id text,
  heartbeat_at timestamptz,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);
comment on table sextant.materialization_runs is E'Runs of pipelines: status, progress per entity, error.';
-- One active run per pipeline: a second request is refused while one is queued or running.
create unique index if not exists materialization_runs_one_active
  on sextant.materialization_runs (pipeline_id) where status in ('queued', 'running');
create index if not exists materialization_runs_pipeline_idx on sextant.materialization_runs (pipeline_id, id desc);

create table if not exists sextant.materialized_tables (
  schema_name name not null,
  table_name name not null,
  tenant_slug text not null references sextant.tenants on delete cascade,
  pipeline_id bigint references sextant.pipelines on delete set null,
  run_id bigint references sextant.materialization_runs on delete set null,
  kind text not null check (kind in ('entity', 'model')),
  loaded_at timestamptz not null,
  row_count bigint,
  rows_changed bigint,
  primary key (schema_name, table_name)
);
comment on table sextant.materialized_tables is E'Every table a pipeline produced: when it was last loaded, by which run, how many rows changed.';

do $$
declare
  t text;
begin
  foreach t in array array['pipelines', 'pipeline_models', 'materialization_runs', 'materialized_tables'] loop
    execute format('alter table sextant.%I enable row level security', t);
    execute format('drop policy if exists select_own_tenant on sextant.%I', t);
    execute format('create policy select_own_tenant on sextant.%I for select using (tenant_slug = (select sextant.current_tenant()))', t);
    execute format('grant select on sextant.%I to sextant_tenant_reader', t);
  end loop;
end
$$;

-- Admins define pipelines (sextant.create_pipeline); analysts and admins request and cancel runs.
create policy admin_writes on sextant.pipelines for all
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin')
  with check (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin');
create policy admin_writes on sextant.pipeline_models for all
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin')
  with check (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin');
grant insert (tenant_slug, name, description, target_schema, source, entities, schedule),
      update (description, target_schema, source, entities, schedule, updated_at, updated_by), delete
  on sextant.pipelines to sextant_tenant_reader;
grant insert (pipeline_id, tenant_slug, name, materialized, raw_sql, description, columns, refs, sources, build_order), delete
  on sextant.pipeline_models to sextant_tenant_reader;

create policy request_runs on sextant.materialization_runs for insert
  with check (tenant_slug = (select sextant.current_tenant())
              and (select sextant.current_access_level()) in ('analyst', 'admin'));
create policy cancel_runs on sextant.materialization_runs for update
  using (tenant_slug = (select sextant.current_tenant())
         and (select sextant.current_access_level()) in ('analyst', 'admin'));
grant insert (tenant_slug, pipeline_id, entities), update (cancel_requested) on sextant.materialization_runs to sextant_tenant_reader;

-- The worker reaches runs, pipelines and secrets only through SECURITY DEFINER functions
-- (sql/materialize.sql), which cross tenants by design.

-- describe_table reports when a pipeline last loaded the table.
alter type sextant.table_description add attribute freshness jsonb;

reset role;
