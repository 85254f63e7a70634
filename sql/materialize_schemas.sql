-- Area: materialization, in five files applied in this order: materialize_schemas.sql (this one:
-- staging schemas, cron, provisioned schemas), materialize_models.sql (models, the builder),
-- materialize_pipelines.sql (pipelines, runs), materialize_worker.sql and materialize_swap.sql
-- (the worker's side). Tools: provision_schema, teardown_schema, list_pipelines,
-- run_materialization, get_materialization_status, cancel_materialization (MCP); the same
-- functions in GraphQL (mutations for the volatile ones) and psql.
-- Invariants:
--   * a tenant's provisioned schemas are named t_<slug>__<name>: no tenant can name another's;
--   * tenants write pipelines and runs through RLS; privileged steps (CREATE SCHEMA, enqueue a
--     job, encrypt a secret) happen in SECURITY DEFINER triggers that trust only the checked row;
--   * SQL models run inside a per-tenant SECURITY DEFINER builder owned by
--     sextant_t_<slug>__builder (reads only that tenant's schemas; cannot change role), and
--     only as one read-only SELECT (no data-modifying CTE, no locking clause);
--   * a run builds everything in its own staging schema and moves it into the target schema
--     in one transaction: readers see the old tables or the complete new ones;
--   * at most one run per pipeline is queued or running (a partial unique index).

set role sextant_owner;

-- Staging schemas are Sextant's; they never show in the catalog.
create or replace function sextant_exec.is_stage_schema(schema_name text)
returns boolean
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select schema_name like 'sextant\_stage\_%' $$;
grant execute on function sextant_exec.is_stage_schema(text) to sextant_tenant_reader;

-- Tenants change these tables through the functions below only (GraphQL shows no CRUD mutations).
comment on table sextant.pipelines is E'@behavior -insert -update -delete\nA pipeline: a source, the entities loaded from it, and SQL models built on them.';
comment on table sextant.pipeline_models is E'@behavior -insert -update -delete\nThe SQL models (dbt-style) of a pipeline, in build order.';
comment on table sextant.materialization_runs is E'@behavior -insert -update -delete\nRuns of pipelines: status, progress per entity, error.';
comment on table sextant.tenant_schemas is E'@behavior -insert -update -delete\nThe schemas a tenant owns or has been given.';

-- ---------------------------------------------------------------------------------------
-- Cron expressions (minute hour day-of-month month day-of-week, UTC): *, n, a-b, */n, a-b/n, lists.
create or replace function sextant_exec.cron_field_matches(field text, value integer, lo integer, hi integer)
returns boolean
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_part text;
  m text[];
  v_from integer;
  v_to integer;
  v_step integer;
begin
  foreach v_part in array string_to_array(field, ',') loop
    m := regexp_match(v_part, '^(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?$');
    if m is null then
      raise exception 'cron field "%" is not valid', field using errcode = 'SX400';
    end if;
    v_from := coalesce(m[2]::integer, lo);
    v_to := coalesce(m[3]::integer, case when m[1] = '*' or m[4] is not null then hi else v_from end);
    v_step := coalesce(m[4]::integer, 1);
    if v_from < lo or v_to > hi or v_from > v_to or v_step < 1 then
      raise exception 'cron field "%" is out of range %-%', field, lo, hi using errcode = 'SX400';
    end if;
    if value between v_from and v_to and (value - v_from) % v_step = 0 then
      return true;
    end if;
  end loop;
  return false;
end
$$;

create or replace function sextant_exec.cron_matches(expr text, at timestamptz)
returns boolean
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  f text[] := regexp_split_to_array(btrim(coalesce(expr, '')), '\s+');
  t timestamp := at at time zone 'UTC';
  v_dow integer := extract(dow from t)::integer;
begin
  if cardinality(f) <> 5 then
    raise exception 'schedule "%" is not a 5-field cron expression', expr
      using errcode = 'SX400', hint = 'minute hour day-of-month month day-of-week (UTC), e.g. "0 * * * *" for hourly.';
  end if;
  return sextant_exec.cron_field_matches(f[1], extract(minute from t)::integer, 0, 59)
     and sextant_exec.cron_field_matches(f[2], extract(hour from t)::integer, 0, 23)
     and sextant_exec.cron_field_matches(f[3], extract(day from t)::integer, 1, 31)
     and sextant_exec.cron_field_matches(f[4], extract(month from t)::integer, 1, 12)
     and (sextant_exec.cron_field_matches(f[5], v_dow, 0, 7)
          or (v_dow = 0 and sextant_exec.cron_field_matches(f[5], 7, 0, 7)));
end
$$;
comment on function sextant_exec.cron_matches(text, timestamptz) is
  E'True when a 5-field cron expression (UTC) matches the minute of a timestamp.';
grant execute on function sextant_exec.cron_matches(text, timestamptz) to sextant_tenant_reader;

-- ---------------------------------------------------------------------------------------
-- Schemas

create or replace function sextant_exec.provisioned_schema_name(slug text, name text)
returns text
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if name is null or name !~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$' then
    raise exception 'schema name % is invalid', coalesce(name, 'null')
      using errcode = 'SX400',
            hint = 'Use lower-case letters and digits with single underscores between words, starting with a letter, e.g. "work" or "sales_2024".';
  end if;
  if length('t_' || slug || '__' || name) > 63 then
    raise exception 'schema name % is too long (t_%__% must fit in 63 characters)', name, slug, name using errcode = 'SX400';
  end if;
  return 't_' || slug || '__' || name;
end
$$;
grant execute on function sextant_exec.provisioned_schema_name(text, text) to sextant_tenant_reader;

-- Creates the schema of a provisioned row a tenant inserted (RLS has checked tenant, level and
-- the t_<slug>__ prefix). The admin's map_schema creates its schemas itself.
create or replace function sextant_private.tenant_schema_created()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reader text := 'sextant_t_' || new.tenant_slug;
  v_builder text := 'sextant_t_' || new.tenant_slug || '__builder';
begin
  -- Runs before RLS's WITH CHECK: check the name here too, so nothing is created for a row RLS would refuse.
  if not pg_has_role(session_user, 'sextant_owner', 'USAGE')
     and new.schema_name not like 't\_' || replace(new.tenant_slug, '_', '\_') || '\_\_%' then
    raise exception 'schema % is not named t_%__<name>', new.schema_name, new.tenant_slug using errcode = '42501';
  end if;
  if exists (select from pg_catalog.pg_namespace where nspname = new.schema_name) then
    if pg_has_role(session_user, 'sextant_owner', 'USAGE') then
      return new;  -- the admin mapping an existing schema
    end if;
    raise exception 'schema % already exists', new.schema_name using errcode = 'SX409';
  end if;
  execute format('create schema %I authorization sextant_owner', new.schema_name);
  execute format('comment on schema %I is %L', new.schema_name,
                 'Provisioned by Sextant for tenant ' || new.tenant_slug);
  execute format('grant usage on schema %I to %I', new.schema_name, v_reader);
  if to_regrole(v_builder) is not null then
    execute format('grant usage, create on schema %I to %I', new.schema_name, v_builder);
  end if;
  return new;
end
$$;
revoke all on function sextant_private.tenant_schema_created() from public;
drop trigger if exists provisioned_schema_create on sextant.tenant_schemas;
create trigger provisioned_schema_create before insert on sextant.tenant_schemas
  for each row when (new.provisioned) execute function sextant_private.tenant_schema_created();

create or replace function sextant_private.tenant_schema_dropped()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format('drop schema if exists %I cascade', old.schema_name);
  delete from sextant.materialized_tables as m where m.schema_name = old.schema_name;
  return old;
end
$$;
revoke all on function sextant_private.tenant_schema_dropped() from public;
drop trigger if exists provisioned_schema_drop on sextant.tenant_schemas;
create trigger provisioned_schema_drop after delete on sextant.tenant_schemas
  for each row when (old.provisioned) execute function sextant_private.tenant_schema_dropped();

create or replace function sextant.provision_schema(name text, ttl_hours integer default null)
returns sextant.schemas
language plpgsql volatile
as $$
declare
  v_slug text := sextant.current_tenant();
  v_schema text;
  v_row sextant.schemas;
begin
  perform sextant.require_level('analyst', 'provisioning schemas');
  if ttl_hours is not null and ttl_hours not between 1 and 8760 then
    raise exception 'ttl_hours must be between 1 and 8760 (a year), got %', ttl_hours using errcode = 'SX400';
  end if;
  v_schema := sextant_exec.provisioned_schema_name(v_slug, provision_schema.name);
  if exists (select from sextant.tenant_schemas as s where s.schema_name = v_schema) then
    raise exception 'schema % is already provisioned', v_schema
      using errcode = 'SX409', hint = 'Use it as it is, or teardown_schema it first.';
  end if;
  insert into sextant.tenant_schemas (schema_name, tenant_slug, provisioned, expires_at)
  values (v_schema, v_slug, true, case when ttl_hours is not null then now() + make_interval(hours => ttl_hours) end);
  select * into v_row from sextant.schemas as s where s.schema_name = v_schema;
  return v_row;
end
$$;
comment on function sextant.provision_schema(text, integer) is
  E'Creates a schema for your tenant, named t_<tenant>__<name>, readable by your tenant only; with '
  'ttl_hours it is dropped automatically after that many hours. Analysts and admins.';
grant execute on function sextant.provision_schema(text, integer) to sextant_tenant_reader;

create or replace function sextant.teardown_schema(name text)
returns text
language plpgsql volatile
as $$
declare
  v_slug text := sextant.current_tenant();
  v_schema text;
  v_pipelines text;
begin
  perform sextant.require_level('analyst', 'tearing down schemas');
  v_schema := case when teardown_schema.name like 't\_%\_\_%' then teardown_schema.name
                   else sextant_exec.provisioned_schema_name(v_slug, teardown_schema.name) end;
  if not exists (select from sextant.tenant_schemas as s where s.schema_name = v_schema and s.provisioned) then
    raise exception 'schema % is not a schema your tenant provisioned', v_schema
      using errcode = 'SX404', hint = 'Only schemas made by provision_schema can be torn down; list_schemas shows them.';
  end if;
  select string_agg(p.name, ', ' order by p.name) into v_pipelines
  from sextant.pipelines as p where p.target_schema = v_schema;
  if v_pipelines is not null then
    raise exception 'schema % is the target of pipeline(s) %', v_schema, v_pipelines
      using errcode = 'SX409', hint = 'Delete those pipelines or point them at another schema first.';
  end if;
  delete from sextant.tenant_schemas as s where s.schema_name = v_schema;
  return v_schema;
end
$$;
comment on function sextant.teardown_schema(text) is
  E'Drops a schema your tenant provisioned, with everything in it. Analysts and admins.';
grant execute on function sextant.teardown_schema(text) to sextant_tenant_reader;

reset role;
