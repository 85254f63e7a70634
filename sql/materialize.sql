-- Area: materialization. Tools: provision_schema, teardown_schema, list_pipelines,
-- run_materialization, get_materialization_status, cancel_materialization (MCP); the same
-- functions in GraphQL (mutations for the volatile ones) and psql. The worker (src/worker/)
-- calls the sextant_private functions at the end of this file.
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

-- ---------------------------------------------------------------------------------------
-- Models: {{ ref('m') }}, {{ source('src', 'table') }}, {{ config(materialized='table'|'view') }}

create or replace function sextant_exec.jinja_calls(raw_sql text)
returns table (fn text, args text[])
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select m[1], array(select a[1] from regexp_matches(m[2], '[''"]([^''"]*)[''"]', 'g') as a)
  from regexp_matches(raw_sql, '\{\{\s*(\w+)\s*\(([^)]*)\)\s*\}\}', 'g') as m;
$$;

-- Checks a pipeline's models and returns them in build order (raises on an unknown ref, a
-- cycle, an unknown source entity, or Jinja other than ref/source/config).
create or replace function sextant_exec.order_models(models jsonb, source_name text, entity_names text[])
returns table (name text, materialized text, raw_sql text, refs text[], sources text[], build_order integer)
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_model jsonb;
  v_names text[] := '{}';
  v_call record;
  v_left text[];
  v_done text[] := '{}';
  v_level integer := 0;
  v_ready text[];
  v_refs jsonb := '{}';
  v_srcs jsonb := '{}';
  v_mat jsonb := '{}';
  v_name text;
  v_sql text;
  v_cfg text;
begin
  if models is null or jsonb_typeof(models) <> 'array' then
    return;
  end if;
  for v_model in select * from jsonb_array_elements(models) loop
    v_name := v_model ->> 'name';
    v_sql := v_model ->> 'sql';
    if v_name is null or v_name !~ '^[a-z][a-z0-9_]{0,62}$' then
      raise exception 'model name % is invalid', coalesce(v_name, 'null')
        using errcode = 'SX400', hint = 'Model names are lower-case identifiers (the .sql file name).';
    end if;
    if v_name = any (v_names) then
      raise exception 'model % is defined twice', v_name using errcode = 'SX400';
    end if;
    if v_name = any (entity_names) then
      raise exception 'model % has the same name as an entity of the source', v_name using errcode = 'SX400';
    end if;
    if v_sql is null or btrim(v_sql) = '' then
      raise exception 'model % has no SQL', v_name using errcode = 'SX400';
    end if;
    if v_sql ~ '\{%|\{#' then
      raise exception 'model % uses Jinja statements or comments ({%% or {#); only {{ ref() }}, {{ source() }} and {{ config() }} are supported', v_name
        using errcode = 'SX400';
    end if;
    v_names := v_names || v_name;
    v_refs := v_refs || jsonb_build_object(v_name, '[]'::jsonb);
    v_srcs := v_srcs || jsonb_build_object(v_name, '[]'::jsonb);
    v_mat := v_mat || jsonb_build_object(v_name, 'table');
    if (select count(*) from regexp_matches(v_sql, '\{\{', 'g')) <> (select count(*) from sextant_exec.jinja_calls(v_sql)) then
      raise exception 'model % has a {{ }} expression other than ref(''model''), source(''source'', ''table'') or config(materialized=...)', v_name
        using errcode = 'SX400';
    end if;
    for v_call in select * from sextant_exec.jinja_calls(v_sql) loop
      if v_call.fn = 'ref' and cardinality(v_call.args) = 1 then
        v_refs := jsonb_set(v_refs, array[v_name], (v_refs -> v_name) || to_jsonb(v_call.args[1]));
      elsif v_call.fn = 'source' and cardinality(v_call.args) = 2 then
        if v_call.args[1] = source_name and not (v_call.args[2] = any (entity_names)) then
          raise exception 'model % reads source(''%'', ''%''), but the source has no entity %', v_name, v_call.args[1], v_call.args[2], v_call.args[2]
            using errcode = 'SX400', hint = 'Entities: ' || array_to_string(entity_names, ', ');
        end if;
        v_srcs := jsonb_set(v_srcs, array[v_name], (v_srcs -> v_name) || to_jsonb(v_call.args[1] || '.' || v_call.args[2]));
      elsif v_call.fn = 'config' then
        v_cfg := substring(v_sql from 'materialized\s*=\s*[''"](\w+)[''"]');
        if v_cfg is not null and v_cfg not in ('table', 'view') then
          raise exception 'model % asks for materialized=''%''; only table and view are supported (full refresh)', v_name, v_cfg
            using errcode = 'SX400';
        end if;
        v_mat := v_mat || jsonb_build_object(v_name, coalesce(v_cfg, 'table'));
      else
        raise exception 'model % calls %(%) in {{ }}; use ref(''model''), source(''source'', ''table'') or config(materialized=...)',
          v_name, v_call.fn, array_to_string(v_call.args, ', ') using errcode = 'SX400';
      end if;
    end loop;
  end loop;
  -- Unknown refs.
  for v_name in select jsonb_object_keys(v_refs) loop
    select string_agg(r, ', ') into v_cfg
    from jsonb_array_elements_text(v_refs -> v_name) as r where not (r = any (v_names));
    if v_cfg is not null then
      raise exception 'model % refers to %, which is not a model of this pipeline', v_name, v_cfg
        using errcode = 'SX400', hint = 'Models: ' || array_to_string(v_names, ', ') || '. Read loaded entities with {{ source(''' || source_name || ''', ''entity'') }}.';
    end if;
  end loop;
  -- Kahn's algorithm: each level is the models whose refs are all built.
  v_left := v_names;
  while cardinality(v_left) > 0 loop
    v_ready := array(select l from unnest(v_left) as l
                     where not exists (select from jsonb_array_elements_text(v_refs -> l) as r where not (r = any (v_done))));
    if cardinality(v_ready) = 0 then
      raise exception 'models % form a cycle of ref() calls', array_to_string(v_left, ', ')
        using errcode = 'SX400', hint = 'A model cannot depend on itself, directly or through others.';
    end if;
    foreach v_name in array v_ready loop
      return query select v_name, v_mat ->> v_name, (select m ->> 'sql' from jsonb_array_elements(models) as m where m ->> 'name' = v_name),
                          array(select distinct jsonb_array_elements_text(v_refs -> v_name)),
                          array(select distinct jsonb_array_elements_text(v_srcs -> v_name)), v_level;
    end loop;
    v_done := v_done || v_ready;
    v_left := array(select l from unnest(v_left) as l where not (l = any (v_ready)));
    v_level := v_level + 1;
  end loop;
end
$$;
comment on function sextant_exec.order_models(jsonb, text, text[]) is
  E'Validates dbt-style models and returns them in dependency order.';
grant execute on function sextant_exec.order_models(jsonb, text, text[]) to sextant_tenant_reader;

-- The SQL of a model with its Jinja resolved: refs to the run's staging schema; sources of the
-- pipeline to the staging copy when this run loads them, else to the target schema.
create or replace function sextant_exec.render_model(raw_sql text, stage_schema text, target_schema text,
  source_name text, loaded_entities text[])
returns text
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_sql text := raw_sql;
  v_call record;
  v_to text;
begin
  for v_call in select m[1] as whole, c.fn, c.args
                from regexp_matches(raw_sql, '(\{\{\s*\w+\s*\([^)]*\)\s*\}\})', 'g') as m,
                     lateral sextant_exec.jinja_calls(m[1]) as c
  loop
    v_to := case
      when v_call.fn = 'ref' then quote_ident(stage_schema) || '.' || quote_ident(v_call.args[1])
      when v_call.fn = 'source' and v_call.args[1] = source_name then
        quote_ident(case when v_call.args[2] = any (loaded_entities) then stage_schema else target_schema end)
          || '.' || quote_ident(v_call.args[2])
      when v_call.fn = 'source' then quote_ident(v_call.args[1]) || '.' || quote_ident(v_call.args[2])
      else '' end;
    v_sql := replace(v_sql, v_call.whole, v_to);
  end loop;
  return v_sql;
end
$$;
grant execute on function sextant_exec.render_model(text, text, text, text, text[]) to sextant_tenant_reader, sextant_worker;

-- ---------------------------------------------------------------------------------------
-- The builder: one per tenant, the only place model SQL runs.

create or replace function sextant_private.builder_source(slug text)
returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $body$
select format($src$
create or replace function sextant_exec.%1$I(stage_schema text, model_name text, materialized text, sql text, timeout_ms integer)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
  v_cursor refcursor;
  v_plan text;
  v_rows bigint;
begin
  if not sextant_exec.is_stage_schema(stage_schema) then
    raise exception 'models are built in a staging schema only' using errcode = 'SX400';
  end if;
  perform set_config('statement_timeout', timeout_ms::text, true);
  perform set_config('search_path', 'pg_catalog' || coalesce(
    (select ', ' || string_agg(quote_ident(s.schema_name), ', ' order by s.schema_name)
       from sextant.tenant_schemas as s), ''), true);
  -- One statement, and a query (a cursor refuses anything else).
  open v_cursor no scroll for execute sql;
  close v_cursor;
  execute 'explain (format json) ' || sql into v_plan;
  if v_plan like '%%"ModifyTable"%%' or v_plan like '%%"LockRows"%%' then
    raise exception 'model %% writes or locks rows; a model must be a plain SELECT', model_name using errcode = 'SX400';
  end if;
  if materialized = 'view' then
    execute format('create view %%I.%%I as %%s', stage_schema, model_name, sql);
    return null;
  end if;
  -- The newline ends a trailing -- comment in the model.
  execute format(e'create table %%I.%%I as select * from (%%s\n) as sextant_model', stage_schema, model_name, sql);
  get diagnostics v_rows = row_count;
  return v_rows;
end
$fn$;
$src$, 'build_model__' || slug);
$body$;
revoke all on function sextant_private.builder_source(text) from public;

-- (Re)creates a tenant's builder role and function. The builder role reads the tenant's
-- schemas (member of its reader role), owns what pipelines produce, and is granted to
-- sextant_owner (to grant on what it owns). It is also the login the worker loads and swaps
-- with (password generated once, kept in sextant_private.settings, handed to the worker by
-- claim_run): everything that reads a source's answers runs in a session whose only rights are
-- this tenant's, never in the worker's own session, which reaches every tenant's runs. The
-- worker is not a member of any builder (an injection in its session cannot SET ROLE into one).
create or replace function sextant_private.install_builder(slug text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_builder text := 'sextant_t_' || slug || '__builder';
  v_schema text;
  v_key text := 'builder_password:' || slug;
  v_password text;
  v_new boolean := to_regrole(v_builder) is null;
begin
  perform sextant_private.install_definer(v_builder, 'sextant_t_' || slug, sextant_private.builder_source(slug),
    format('%I(text, text, text, text, integer)', 'build_model__' || slug), 'sextant_worker');
  execute format('grant %I to sextant_owner', v_builder);
  if exists (select from pg_auth_members as m where m.roleid = to_regrole(v_builder) and m.member = 'sextant_worker'::regrole) then
    execute format('revoke %I from sextant_worker', v_builder);
  end if;
  -- Roles are shared by the databases of a cluster: the stored password is set on the role only
  -- when it is first generated here or the role was just (re)created, so a second database on
  -- the cluster does not change the password under a running worker of the first.
  select s.value into v_password from sextant_private.settings as s where s.key = v_key;
  if v_password is null then
    v_password := encode(public.gen_random_bytes(24), 'hex');
    insert into sextant_private.settings (key, value) values (v_key, v_password);
    v_new := true;
  end if;
  if v_new then
    execute format('alter role %I password %L', v_builder, v_password);
  end if;
  -- NOINHERIT would hide the reader role's rights: the builder must read the tenant's schemas.
  execute format('alter role %I with login inherit nocreaterole nocreatedb', v_builder);
  execute format('grant connect on database %I to %I', current_database(), v_builder);
  -- Provisioned schemas and pipeline targets: the builder creates there.
  for v_schema in select s.schema_name from sextant.tenant_schemas as s
                  where s.tenant_slug = slug
                    and (s.provisioned or exists (select from sextant.pipelines as p where p.target_schema = s.schema_name))
  loop
    execute format('grant usage, create on schema %I to %I', v_schema, v_builder);
  end loop;
end
$$;
revoke all on function sextant_private.install_builder(text) from public;

reset role;
-- Builders are refreshed for every tenant each time this file runs (admin rights needed).
select sextant_private.install_builder(t.slug) from sextant.tenants as t;
set role sextant_owner;

-- ---------------------------------------------------------------------------------------
-- Pipelines

create or replace function sextant_private.pipeline_target_granted()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format('grant usage, create on schema %I to %I', new.target_schema, 'sextant_t_' || new.tenant_slug || '__builder');
  return new;
end
$$;
revoke all on function sextant_private.pipeline_target_granted() from public;
drop trigger if exists pipeline_target_grant on sextant.pipelines;
create trigger pipeline_target_grant after insert or update of target_schema on sextant.pipelines
  for each row execute function sextant_private.pipeline_target_granted();

-- The kinds of source a pipeline may name: the worker has a loader for each
-- (src/worker/sources/index.ts; a test keeps the two lists equal).
create or replace function sextant_exec.source_kinds()
returns text[]
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select array['http', 'csv', 'postgres'] $$;
revoke all on function sextant_exec.source_kinds() from public;
grant execute on function sextant_exec.source_kinds() to sextant_tenant_reader, sextant_worker;

-- The origins (scheme://host:port, lower case, no credentials) a source and its entities point
-- at: base_url, an inline connection_string, and entity url/path values that are whole URLs.
create or replace function sextant_exec.source_origins(source jsonb, entities jsonb)
returns text[]
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(distinct o order by o), '{}')
  from (
    select lower(m[1]) || lower(m[2]) as o
    from (select source ->> 'base_url' as v
          union all select source ->> 'connection_string' where jsonb_typeof(source -> 'connection_string') = 'string'
          union all select e ->> 'url' from jsonb_array_elements(case when jsonb_typeof(entities) = 'array' then entities else '[]' end) as e
          union all select e ->> 'path' from jsonb_array_elements(case when jsonb_typeof(entities) = 'array' then entities else '[]' end) as e) as u,
         regexp_match(u.v, '^\s*([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/?#@]*@)?([^/?#]*)') as m
    where u.v is not null and m is not null
  ) as x;
$$;
revoke all on function sextant_exec.source_origins(jsonb, jsonb) from public;
grant execute on function sextant_exec.source_origins(jsonb, jsonb) to sextant_tenant_reader;

-- Every write of a pipeline: a URL or connection string with a password in it is refused (the
-- definition is shown to every viewer of the tenant: allPipelines, list_pipelines), and a
-- pipeline re-pointed at an origin it did not use before loses its stored secrets, so a secret
-- header or password set for one server is never sent to another.
create or replace function sextant_private.pipeline_guard()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select from jsonb_path_query(jsonb_build_array(new.source, new.entities), 'strict $.**') as v
             where jsonb_typeof(v) = 'string'
               and (v #>> '{}' ~* '^\s*[a-z][a-z0-9+.-]*://[^/?#@]*:[^/?#@]*@' or v #>> '{}' ~* '[?&]password=')) then
    raise exception 'pipeline % has a password inside a URL or connection string', new.name
      using errcode = 'SX400',
            hint = 'Store the connection string (or the password) with set_pipeline_secret and refer to it as {"secret": "name"}; definitions are shown to every viewer.';
  end if;
  -- The worker is shared by every tenant: a source's knobs stay within bounds (a page is held in
  -- memory whole; retries and timeouts keep a worker slot busy).
  if exists (select from (values ('max_page_bytes', 1::numeric, 268435456::numeric), ('max_retries', 0, 10),
                                 ('timeout_ms', 1, 300000), ('requests_per_second', 0.01, 1000)) as b (k, lo, hi)
             where new.source ? b.k
               and (jsonb_typeof(new.source -> b.k) <> 'number' or (new.source ->> b.k)::numeric not between b.lo and b.hi)) then
    raise exception 'pipeline % sets a source limit out of bounds', new.name
      using errcode = 'SX400',
            hint = 'max_page_bytes is 1 to 268435456, max_retries 0 to 10, timeout_ms 1 to 300000, requests_per_second 0.01 to 1000.';
  end if;
  -- Credentials in headers likewise: a literal value of a header that carries them.
  if jsonb_typeof(new.source -> 'headers') = 'object'
     and exists (select from jsonb_each(new.source -> 'headers') as h
                 where jsonb_typeof(h.value) = 'string'
                   and h.key ~* '^(authorization|proxy-authorization|cookie)$|api[-_]?key|token|secret|password|auth') then
    raise exception 'pipeline % has a literal value in a credential header', new.name
      using errcode = 'SX400', hint = 'Store it with set_pipeline_secret and refer to it as {"secret": "name"}; definitions are shown to every viewer.';
  end if;
  if tg_op = 'UPDATE'
     and not (sextant_exec.source_origins(new.source, new.entities) <@ sextant_exec.source_origins(old.source, old.entities)) then
    delete from sextant_private.pipeline_secrets as s where s.pipeline_id = old.id;
  end if;
  return new;
end
$$;
revoke all on function sextant_private.pipeline_guard() from public;
drop trigger if exists pipeline_guard on sextant.pipelines;
create trigger pipeline_guard before insert or update of source, entities on sextant.pipelines
  for each row execute function sextant_private.pipeline_guard();

-- Creates or replaces a pipeline from its definition (what `sextant pipeline create` reads
-- from YAML): {name, description?, target_schema, schedule?, source: {name, kind, ...},
-- entities: [{name, ...}], models: [{name, sql, description?, columns?}]}. Admins.
create or replace function sextant.create_pipeline(definition jsonb)
returns sextant.pipelines
language plpgsql volatile
as $$
declare
  v_slug text := sextant.current_tenant();
  v_def jsonb := definition;
  v_name text := definition ->> 'name';
  v_source jsonb := definition -> 'source';
  v_entities text[];
  v_target text := definition ->> 'target_schema';
  v_row sextant.pipelines;
  v_kind text;
begin
  perform sextant.require_level('admin', 'defining pipelines');
  if v_def is null or jsonb_typeof(v_def) <> 'object' then
    raise exception 'a pipeline definition is a JSON object' using errcode = 'SX400';
  end if;
  if v_name is null or v_name !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception 'pipeline name % is invalid', coalesce(v_name, 'null')
      using errcode = 'SX400', hint = 'Use a lower-case identifier, e.g. "shop_api".';
  end if;
  if v_source is null or jsonb_typeof(v_source) <> 'object' then
    raise exception 'pipeline % has no source object', v_name using errcode = 'SX400';
  end if;
  v_kind := v_source ->> 'kind';
  if v_kind is null or not v_kind = any (sextant_exec.source_kinds()) then
    raise exception 'source kind % is not one of %', coalesce(v_kind, 'null'), array_to_string(sextant_exec.source_kinds(), ', ')
      using errcode = 'SX400';
  end if;
  if coalesce(v_source ->> 'name', v_name) !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception 'source name % is invalid', v_source ->> 'name' using errcode = 'SX400';
  end if;
  if v_source ? 'secrets' or v_source::text ~* '"(password|token|api_key|apikey|secret_value)"\s*:\s*"' then
    raise exception 'pipeline % has a secret value in its definition', v_name
      using errcode = 'SX400', hint = 'Store secrets with set_pipeline_secret and refer to them as {"secret": "name"}.';
  end if;
  if jsonb_typeof(v_def -> 'entities') is distinct from 'array' or jsonb_array_length(v_def -> 'entities') = 0 then
    raise exception 'pipeline % needs at least one entity', v_name using errcode = 'SX400';
  end if;
  v_entities := array(select e ->> 'name' from jsonb_array_elements(v_def -> 'entities') as e);
  if exists (select from unnest(v_entities) as e where e is null or e !~ '^[a-z][a-z0-9_]{0,62}$') then
    raise exception 'entity names must be lower-case identifiers' using errcode = 'SX400';
  end if;
  if cardinality(v_entities) <> (select count(distinct e) from unnest(v_entities) as e) then
    raise exception 'pipeline % names an entity twice', v_name using errcode = 'SX400';
  end if;
  if v_target is null or not exists (select from sextant.tenant_schemas as s where s.schema_name = v_target) then
    raise exception 'target schema % is not one of your tenant''s schemas', coalesce(v_target, 'null')
      using errcode = 'SX400', hint = 'Provision one with provision_schema, or use a schema list_schemas shows.';
  end if;
  if v_def ->> 'schedule' is not null then
    perform sextant_exec.cron_matches(v_def ->> 'schedule', now());
  end if;
  -- Validates the models (raises on cycles, unknown refs and unsupported Jinja).
  perform from sextant_exec.order_models(v_def -> 'models', coalesce(v_source ->> 'name', v_name), v_entities);

  insert into sextant.pipelines (tenant_slug, name, description, target_schema, source, entities, schedule)
  values (v_slug, v_name, v_def ->> 'description', v_target,
          v_source || jsonb_build_object('name', coalesce(v_source ->> 'name', v_name)), v_def -> 'entities', v_def ->> 'schedule')
  on conflict (tenant_slug, name) do update
    set description = excluded.description, target_schema = excluded.target_schema, source = excluded.source,
        entities = excluded.entities, schedule = excluded.schedule, updated_at = now(),
        updated_by = sextant.current_person()
  returning * into v_row;
  delete from sextant.pipeline_models as m where m.pipeline_id = v_row.id;
  insert into sextant.pipeline_models (pipeline_id, tenant_slug, name, materialized, raw_sql, description, columns, refs, sources, build_order)
  select v_row.id, v_slug, o.name, o.materialized, o.raw_sql, d ->> 'description', coalesce(d -> 'columns', '[]'), o.refs, o.sources, o.build_order
  from sextant_exec.order_models(v_def -> 'models', v_row.source ->> 'name', v_entities) as o
  join jsonb_array_elements(v_def -> 'models') as d on d ->> 'name' = o.name;
  return v_row;
end
$$;
comment on function sextant.create_pipeline(jsonb) is
  E'Creates or replaces a pipeline of your tenant from its definition (source, entities, models). Admins.';
grant execute on function sextant.create_pipeline(jsonb) to sextant_tenant_reader;

create or replace function sextant.delete_pipeline(name text)
returns boolean
language plpgsql volatile
as $$
begin
  perform sextant.require_level('admin', 'deleting pipelines');
  delete from sextant.pipelines as p where p.name = delete_pipeline.name and p.tenant_slug = sextant.current_tenant();
  if not found then
    raise exception 'pipeline % does not exist', name using errcode = 'SX404';
  end if;
  return true;
end
$$;
comment on function sextant.delete_pipeline(text) is E'Deletes a pipeline (its tables stay). Admins.';
grant execute on function sextant.delete_pipeline(text) to sextant_tenant_reader;

-- Secrets: encrypted with the installation's key; there is no function that returns them
-- except the worker's claim_run.
create or replace function sextant_private.store_pipeline_secret(pipeline_id bigint, name text, value text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if name is null or name !~ '^[A-Za-z][A-Za-z0-9_]{0,62}$' then
    raise exception 'secret name % is invalid', coalesce(name, 'null') using errcode = 'SX400';
  end if;
  if value is null or length(value) = 0 or length(value) > 10000 then
    raise exception 'a secret value is 1 to 10000 characters' using errcode = 'SX400';
  end if;
  insert into sextant_private.pipeline_secrets (pipeline_id, name, ciphertext)
  values (pipeline_id, name, public.pgp_sym_encrypt(value, (select s.value from sextant_private.settings as s where s.key = 'secret_key')))
  on conflict on constraint pipeline_secrets_pkey do update set ciphertext = excluded.ciphertext, updated_at = now();
end
$$;
revoke all on function sextant_private.store_pipeline_secret(bigint, text, text) from public;

-- The pipeline is looked up with the caller's rights (RLS), so a tenant can only reach its own;
-- the pipelines update makes RLS check the admin level before anything is stored.
create or replace function sextant.set_pipeline_secret(pipeline text, name text, value text)
returns boolean
language plpgsql volatile
as $$
declare
  v_id bigint;
begin
  update sextant.pipelines as p set updated_at = now()
  where p.name = set_pipeline_secret.pipeline and p.tenant_slug = sextant.current_tenant()
  returning p.id into v_id;
  if v_id is null then
    raise exception 'pipeline % does not exist, or you are not an admin of its tenant', pipeline using errcode = 'SX404';
  end if;
  perform sextant_exec.store_secret(v_id, name, value);
  return true;
end
$$;
comment on function sextant.set_pipeline_secret(text, text, text) is
  E'Stores (encrypted) a secret a pipeline''s source refers to as {"secret": "<name>"}. Admins. Secrets are never returned.';
grant execute on function sextant.set_pipeline_secret(text, text, text) to sextant_tenant_reader;

-- Runs only for a pipeline the caller just updated (so: its own tenant, as admin).
create or replace function sextant_exec.store_secret(pipeline_id bigint, name text, value text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from sextant.pipelines as p
                 where p.id = store_secret.pipeline_id and p.updated_at = now()) then
    raise exception 'secrets are stored through set_pipeline_secret' using errcode = 'SX403';
  end if;
  perform sextant_private.store_pipeline_secret(pipeline_id, name, value);
end
$$;
revoke all on function sextant_exec.store_secret(bigint, text, text) from public;
grant execute on function sextant_exec.store_secret(bigint, text, text) to sextant_tenant_reader;

create or replace function sextant.list_pipelines()
returns table (name text, description text, source_kind text, target_schema text, entities text[], models text[],
               schedule text, last_run_id bigint, last_status text, last_finished_at timestamptz, last_error text)
language sql stable
as $$
  select p.name, p.description, p.source ->> 'kind', p.target_schema::text,
         array(select e ->> 'name' from jsonb_array_elements(p.entities) as e),
         array(select m.name from sextant.pipeline_models as m where m.pipeline_id = p.id order by m.build_order, m.name),
         p.schedule, r.id, r.status, r.finished_at, r.error
  from sextant.pipelines as p
  left join lateral (select * from sextant.materialization_runs as r where r.pipeline_id = p.id order by r.id desc limit 1) as r on true
  order by p.name;
$$;
comment on function sextant.list_pipelines() is
  E'Your tenant''s pipelines: source, entities, models, schedule and the last run.';
grant execute on function sextant.list_pipelines() to sextant_tenant_reader;

-- ---------------------------------------------------------------------------------------
-- Runs

create or replace function sextant_private.run_enqueued()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- One queue per pipeline (runs of a pipeline never overlap); the job key makes a re-enqueue idempotent.
  perform graphile_worker.add_job('sextant_materialize', json_build_object('run_id', new.id),
    queue_name => 'sextant_pipeline_' || new.pipeline_id, job_key => 'sextant_run_' || new.id, max_attempts => 5);
  perform pg_notify('sextant_runs', new.id::text);
  return new;
end
$$;
revoke all on function sextant_private.run_enqueued() from public;
drop trigger if exists run_enqueue on sextant.materialization_runs;
create trigger run_enqueue after insert on sextant.materialization_runs
  for each row execute function sextant_private.run_enqueued();

-- A cancelled queued run never starts: it ends here and its job is removed.
create or replace function sextant_private.run_cancel_requested()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if new.cancel_requested and not old.cancel_requested and old.status = 'queued' then
    new.status := 'cancelled';
    new.finished_at := now();
    new.current_step := 'cancelled before it started';
    perform graphile_worker.remove_job('sextant_run_' || new.id);
  end if;
  return new;
end
$$;
revoke all on function sextant_private.run_cancel_requested() from public;
drop trigger if exists run_cancel on sextant.materialization_runs;
create trigger run_cancel before update of cancel_requested on sextant.materialization_runs
  for each row execute function sextant_private.run_cancel_requested();

create or replace function sextant.run_materialization(pipeline text, entities text[] default null)
returns sextant.materialization_runs
language plpgsql volatile
as $$
declare
  v_pipeline sextant.pipelines;
  v_row sextant.materialization_runs;
  v_unknown text;
  v_active bigint;
begin
  perform sextant.require_level('analyst', 'running pipelines');
  select * into v_pipeline from sextant.pipelines as p
  where p.name = run_materialization.pipeline and p.tenant_slug = sextant.current_tenant();
  if v_pipeline.id is null then
    raise exception 'pipeline % does not exist', coalesce(pipeline, 'null')
      using errcode = 'SX404', hint = 'Call list_pipelines to see your tenant''s pipelines.';
  end if;
  select string_agg(e, ', ') into v_unknown from unnest(entities) as e
  where not exists (select from jsonb_array_elements(v_pipeline.entities) as pe where pe ->> 'name' = e);
  if v_unknown is not null then
    raise exception 'pipeline % has no entity %', pipeline, v_unknown
      using errcode = 'SX400', hint = 'Entities: ' || (select string_agg(pe ->> 'name', ', ') from jsonb_array_elements(v_pipeline.entities) as pe);
  end if;
  select r.id into v_active from sextant.materialization_runs as r
  where r.pipeline_id = v_pipeline.id and r.status in ('queued', 'running');
  if v_active is not null then
    raise exception 'run % of pipeline % is already queued or running', v_active, pipeline
      using errcode = 'SX409', hint = 'Watch it with get_materialization_status, or cancel it first.';
  end if;
  begin
    insert into sextant.materialization_runs (tenant_slug, pipeline_id, entities)
    values (v_pipeline.tenant_slug, v_pipeline.id, nullif(entities, '{}'))
    returning * into v_row;
  exception when unique_violation then
    raise exception 'a run of pipeline % was requested at the same moment and is queued', pipeline
      using errcode = 'SX409', hint = 'Watch it with get_materialization_status.';
  end;
  return v_row;
end
$$;
comment on function sextant.run_materialization(text, text[]) is
  E'Queues a full refresh of a pipeline (all entities, or those named) and returns the run at once; '
  'poll get_materialization_status. One run per pipeline at a time. Analysts and admins.';
grant execute on function sextant.run_materialization(text, text[]) to sextant_tenant_reader;

create or replace function sextant.get_materialization_status(run_id bigint)
returns table (run_id bigint, pipeline text, status text, current_step text, entities jsonb, error text,
               attempts integer, cancel_requested boolean, created_at timestamptz, started_at timestamptz,
               finished_at timestamptz, elapsed_ms bigint)
language sql stable
as $$
  select r.id, p.name, r.status, r.current_step, r.progress, r.error, r.attempts, r.cancel_requested,
         r.created_at, r.started_at, r.finished_at,
         (extract(epoch from coalesce(r.finished_at, now()) - coalesce(r.started_at, r.created_at)) * 1000)::bigint
  from sextant.materialization_runs as r
  join sextant.pipelines as p on p.id = r.pipeline_id
  where r.id = get_materialization_status.run_id;
$$;
comment on function sextant.get_materialization_status(bigint) is
  E'Status of a run: queued, running, succeeded, failed or cancelled; rows loaded per entity, current step, error.';
grant execute on function sextant.get_materialization_status(bigint) to sextant_tenant_reader;

create or replace function sextant.cancel_materialization(run_id bigint)
returns sextant.materialization_runs
language plpgsql volatile
as $$
declare
  v_row sextant.materialization_runs;
begin
  perform sextant.require_level('analyst', 'cancelling runs');
  update sextant.materialization_runs as r set cancel_requested = true
  where r.id = cancel_materialization.run_id and r.status in ('queued', 'running')
  returning * into v_row;
  if v_row.id is null then
    select * into v_row from sextant.materialization_runs as r where r.id = cancel_materialization.run_id;
    if v_row.id is null then
      raise exception 'run % does not exist', run_id using errcode = 'SX404';
    end if;
  end if;
  return v_row;
end
$$;
comment on function sextant.cancel_materialization(bigint) is
  E'Cancels a run: a queued run never starts; a running one stops at its next batch and leaves the old tables in place. '
  'Returns the run (already finished runs are returned unchanged). Analysts and admins.';
grant execute on function sextant.cancel_materialization(bigint) to sextant_tenant_reader;

-- ---------------------------------------------------------------------------------------
-- The worker's side (granted to sextant_worker only; these cross tenants by design).

-- Starts (or resumes after a crash) a run: returns everything the worker needs, secrets
-- decrypted, or null when there is nothing to do (finished, or cancelled while queued).
create or replace function sextant_private.claim_run(run_id bigint, worker_id text, attempt integer)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run sextant.materialization_runs;
  v_pipeline sextant.pipelines;
  v_stage text := 'sextant_stage_' || run_id;
  v_builder text;
  v_key text := (select s.value from sextant_private.settings as s where s.key = 'secret_key');
begin
  select * into v_run from sextant.materialization_runs as r where r.id = claim_run.run_id for update;
  if v_run.id is null or v_run.status in ('succeeded', 'failed', 'cancelled') then
    return null;
  end if;
  if v_run.cancel_requested then
    update sextant.materialization_runs as r
    set status = 'cancelled', finished_at = now(), current_step = 'cancelled before it started'
    where r.id = v_run.id;
    return null;
  end if;
  select * into v_pipeline from sextant.pipelines as p where p.id = v_run.pipeline_id;
  v_builder := 'sextant_t_' || v_pipeline.tenant_slug || '__builder';
  -- A retry starts from a clean staging schema.
  execute format('drop schema if exists %I cascade', v_stage);
  execute format('create schema %I authorization %I', v_stage, v_builder);
  update sextant.materialization_runs as r
  set status = 'running', started_at = coalesce(r.started_at, now()), worker_id = claim_run.worker_id,
      heartbeat_at = now(), attempts = r.attempts + 1, current_step = 'starting', progress = '{}'
  where r.id = v_run.id;
  return jsonb_build_object(
    'run_id', v_run.id, 'attempt', v_run.attempts + 1, 'tenant', v_pipeline.tenant_slug, 'pipeline', v_pipeline.name, 'pipeline_id', v_pipeline.id,
    'builder_role', v_builder, 'reader_role', 'sextant_t_' || v_pipeline.tenant_slug,
    -- The worker loads and swaps logged in as the builder (see install_builder).
    'builder_password', (select s.value from sextant_private.settings as s where s.key = 'builder_password:' || v_pipeline.tenant_slug),
    'stage_schema', v_stage, 'target_schema', v_pipeline.target_schema,
    'source', v_pipeline.source,
    -- Decrypted for the worker, which puts them where the source says {"secret": "name"}.
    'secrets', (select coalesce(jsonb_object_agg(s.name, public.pgp_sym_decrypt(s.ciphertext, v_key)), '{}')
                  from sextant_private.pipeline_secrets as s where s.pipeline_id = v_pipeline.id),
    'entities', (select coalesce(jsonb_agg(e), '[]') from jsonb_array_elements(v_pipeline.entities) as e
                  where v_run.entities is null or e ->> 'name' = any (v_run.entities)),
    'models', (select coalesce(jsonb_agg(jsonb_build_object('name', m.name, 'materialized', m.materialized, 'raw_sql', m.raw_sql)
                                         order by m.build_order, m.name), '[]')
                 from sextant.pipeline_models as m where m.pipeline_id = v_pipeline.id),
    'timeout_ms', 600000);
end
$$;
revoke all on function sextant_private.claim_run(bigint, text, integer) from public;
grant execute on function sextant_private.claim_run(bigint, text, integer) to sextant_worker;

-- Progress of a running run's attempt; returns true when the attempt should stop (cancelled, no
-- longer running, or the run was handed to a later attempt — possibly by the same worker process).
drop function if exists sextant_private.report_progress(bigint, text, text, jsonb);
create or replace function sextant_private.report_progress(run_id bigint, attempt integer, step text, entity text, entity_progress jsonb)
returns boolean
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_stop boolean;
begin
  update sextant.materialization_runs as r
  set current_step = coalesce(step, r.current_step), heartbeat_at = now(),
      progress = case when entity is null then r.progress
                      else r.progress || jsonb_build_object(entity, coalesce(r.progress -> entity, '{}') || entity_progress) end
  where r.id = report_progress.run_id and r.status = 'running' and r.attempts = report_progress.attempt
  returning r.cancel_requested into v_stop;
  return coalesce(v_stop, true);
end
$$;
revoke all on function sextant_private.report_progress(bigint, integer, text, text, jsonb) from public;
grant execute on function sextant_private.report_progress(bigint, integer, text, text, jsonb) to sextant_worker;

-- Called in the swap (swap_run, through finish_build), after the tables moved: records freshness, grants
-- the tenant's readers SELECT on what the tenant's filters allow, ends the run.
drop function if exists sextant_private.finish_run(bigint, text, jsonb);
create or replace function sextant_private.finish_run(run_id bigint, worker_id text, attempt integer, tables jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run sextant.materialization_runs;
  v_tenant sextant.tenants;
  v_t jsonb;
  v_denied boolean;
begin
  select * into v_run from sextant.materialization_runs as r where r.id = finish_run.run_id for update;
  if v_run.status is distinct from 'running' or v_run.worker_id is distinct from finish_run.worker_id
     or v_run.attempts is distinct from finish_run.attempt then
    raise exception 'run % is no longer this attempt''s (status %, attempt %)', run_id, v_run.status, v_run.attempts using errcode = 'SX409';
  end if;
  select * into v_tenant from sextant.tenants as t where t.slug = v_run.tenant_slug;
  for v_t in select * from jsonb_array_elements(tables) loop
    v_denied := (cardinality(v_tenant.allowed_tables) > 0
                  and not exists (select from unnest(v_tenant.allowed_tables) as p where (v_t ->> 'schema') || '.' || (v_t ->> 'table') like p))
             or exists (select from unnest(v_tenant.excluded_tables) as p where (v_t ->> 'schema') || '.' || (v_t ->> 'table') like p);
    if not v_denied then
      execute format('grant select on %I.%I to %I', v_t ->> 'schema', v_t ->> 'table', v_tenant.reader_role);
    end if;
    insert into sextant.materialized_tables (schema_name, table_name, tenant_slug, pipeline_id, run_id, kind, loaded_at, row_count, rows_changed)
    values (v_t ->> 'schema', v_t ->> 'table', v_run.tenant_slug, v_run.pipeline_id, v_run.id, v_t ->> 'kind', now(),
            (v_t ->> 'rows')::bigint, (v_t ->> 'rows_changed')::bigint)
    on conflict (schema_name, table_name) do update
      set pipeline_id = excluded.pipeline_id, run_id = excluded.run_id, kind = excluded.kind, loaded_at = excluded.loaded_at,
          row_count = excluded.row_count, rows_changed = excluded.rows_changed;
  end loop;
  perform sextant_private.index_pipeline_models(v_run.pipeline_id);
  update sextant.materialization_runs as r
  set status = 'succeeded', finished_at = now(), current_step = 'done', error = null, heartbeat_at = now()
  where r.id = v_run.id;
  execute format('drop schema if exists %I cascade', 'sextant_stage_' || v_run.id);
end
$$;
revoke all on function sextant_private.finish_run(bigint, text, integer, jsonb) from public;
grant execute on function sextant_private.finish_run(bigint, text, integer, jsonb) to sextant_worker;

-- finish_run for the builder's session (the swap runs logged in as the tenant's builder, not
-- as the worker): only the builder of the run's own tenant may end it, and only with tables of
-- the run's target schema named after the pipeline's entities and models, so a session that
-- loads a tenant's data can neither end another tenant's run nor have SELECT granted on
-- anything else.
create or replace function sextant_exec.finish_build(run_id bigint, worker_id text, attempt integer, tables jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run sextant.materialization_runs;
  v_pipeline sextant.pipelines;
  v_t jsonb;
begin
  select * into v_run from sextant.materialization_runs as r where r.id = finish_build.run_id;
  select * into v_pipeline from sextant.pipelines as p where p.id = v_run.pipeline_id;
  if v_run.id is null or session_user::text is distinct from 'sextant_t_' || v_run.tenant_slug || '__builder' then
    raise exception 'run % is not this session''s to finish', run_id using errcode = 'SX403';
  end if;
  if jsonb_typeof(tables) is distinct from 'array' then
    raise exception 'finish_build: tables is an array' using errcode = 'SX400';
  end if;
  for v_t in select * from jsonb_array_elements(tables) loop
    if v_t ->> 'schema' is distinct from v_pipeline.target_schema::text
       or not (v_t ->> 'table' in (select e ->> 'name' from jsonb_array_elements(v_pipeline.entities) as e)
               or v_t ->> 'table' in (select m.name from sextant.pipeline_models as m where m.pipeline_id = v_pipeline.id)) then
      raise exception 'table %.% is not an output of pipeline %', v_t ->> 'schema', v_t ->> 'table', v_pipeline.name using errcode = 'SX403';
    end if;
  end loop;
  perform sextant_private.finish_run(run_id, worker_id, attempt, tables);
end
$$;
revoke all on function sextant_exec.finish_build(bigint, text, integer, jsonb) from public;
grant execute on function sextant_exec.finish_build(bigint, text, integer, jsonb) to sextant_tenant_reader;

-- The target schema of a run, for the swap in the builder's session (swap_run): only the
-- builder of the run's own tenant gets it. Refuses names in the target schema that are not this
-- pipeline's earlier output (a table someone else made is never dropped by a run).
create or replace function sextant_exec.swap_target(run_id bigint, table_names text[])
returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run sextant.materialization_runs;
  v_target text;
  v_foreign text[];
begin
  select * into v_run from sextant.materialization_runs as r where r.id = swap_target.run_id;
  if v_run.id is null or session_user::text is distinct from 'sextant_t_' || v_run.tenant_slug || '__builder' then
    raise exception 'run % is not this session''s to finish', run_id using errcode = 'SX403';
  end if;
  select p.target_schema into v_target from sextant.pipelines as p where p.id = v_run.pipeline_id;
  v_foreign := sextant_private.foreign_tables(v_run.pipeline_id, v_target, table_names);
  if cardinality(v_foreign) > 0 then
    raise exception '% already has %, not made by this pipeline', v_target, array_to_string(v_foreign, ', ')
      using errcode = 'SX400', hint = 'Rename the entities or models, or point the pipeline at another schema.';
  end if;
  return v_target;
end
$$;
revoke all on function sextant_exec.swap_target(bigint, text[]) from public;
grant execute on function sextant_exec.swap_target(bigint, text[]) to sextant_tenant_reader;

-- Rows that differ between the new table in the staging schema and the old one in the target
-- schema, both ways (_raw left out: key order in a source's JSON is no change). Null when either
-- is over 200,000 rows, a view, or not comparable (columns changed); the new row count when there
-- is no old table. Runs with the caller's rights (the builder's, in swap_run).
create or replace function sextant_exec.rows_changed(stage_schema text, target_schema text, table_name text, new_rows bigint)
returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_new text := format('%I.%I', stage_schema, table_name);
  v_old text := format('%I.%I', target_schema, table_name);
  v_cols text;
  v_n bigint;
begin
  if new_rows is null or new_rows > 200000 then
    return null;
  end if;
  if to_regclass(v_old) is null then
    return new_rows;
  end if;
  execute format('select count(*) from %s', v_old) into v_n;
  if v_n > 200000 then
    return null;
  end if;
  select string_agg(quote_ident(a.attname), ', ' order by a.attnum) into v_cols
  from pg_attribute as a where a.attrelid = v_new::regclass and a.attnum > 0 and not a.attisdropped and a.attname <> '_raw';
  execute format('select count(*) from ((select %1$s from %2$s except all select %1$s from %3$s)
                                        union all (select %1$s from %3$s except all select %1$s from %2$s)) as d', v_cols, v_new, v_old)
    into v_n;
  return v_n;
exception when others then
  return null;
end
$$;
revoke all on function sextant_exec.rows_changed(text, text, text, bigint) from public;
grant execute on function sextant_exec.rows_changed(text, text, text, bigint) to sextant_tenant_reader;

-- The swap of a run: in one transaction (this one statement), everything the run built in its
-- staging schema replaces what the pipeline made before in the target schema, and the run ends
-- (finish_build): readers see the old tables or the complete new ones, never a mix. `loaded` is
-- [{table, kind: entity|model, rows, relkind: table|view}] in build order. Called by the worker
-- logged in as the tenant's builder, and runs with its rights only (SECURITY INVOKER: every drop
-- and move is the builder's own; ending the run goes through finish_build's checks). Returns the
-- tables recorded, with their rows changed.
create or replace function sextant_exec.swap_run(run_id bigint, worker_id text, attempt integer, loaded jsonb)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_stage text := 'sextant_stage_' || run_id;
  v_target text;
  v_tables jsonb := '[]';
  v_item jsonb;
  v_old record;
  v_detail text;
  v_message text;
begin
  if jsonb_typeof(loaded) is distinct from 'array' then
    raise exception 'swap_run: loaded is an array' using errcode = 'SX400';
  end if;
  v_target := sextant_exec.swap_target(run_id, array(select l ->> 'table' from jsonb_array_elements(loaded) as l));
  for v_item in select * from jsonb_array_elements(loaded) loop
    v_tables := v_tables || jsonb_build_object('schema', v_target, 'table', v_item ->> 'table', 'kind', v_item ->> 'kind',
      'rows', v_item -> 'rows',
      'rows_changed', case when v_item ->> 'relkind' = 'table'
                           then sextant_exec.rows_changed(v_stage, v_target, v_item ->> 'table', (v_item ->> 'rows')::bigint) end);
  end loop;
  -- Old views first (they may depend on old tables), then old tables.
  for v_old in
    select c.relname, c.relkind from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
    where n.nspname = v_target and c.relname = any (array(select l ->> 'table' from jsonb_array_elements(loaded) as l))
    order by c.relkind <> 'v'
  loop
    begin
      execute format('drop %s %I.%I', case when v_old.relkind = 'v' then 'view' else 'table' end, v_target, v_old.relname);
    exception when dependent_objects_still_exist then
      get stacked diagnostics v_detail = pg_exception_detail, v_message = message_text;
      raise exception 'cannot replace %.%: %', v_target, v_old.relname, coalesce(nullif(v_detail, ''), v_message)
        using errcode = 'SX400', hint = 'Another view depends on it; drop that view or make it a model of this pipeline.';
    end;
  end loop;
  for v_item in select * from jsonb_array_elements(loaded) loop
    execute format('alter %s %I.%I set schema %I', case when v_item ->> 'relkind' = 'view' then 'view' else 'table' end,
                   v_stage, v_item ->> 'table', v_target);
  end loop;
  perform sextant_exec.finish_build(run_id, worker_id, attempt, v_tables);
  return v_tables;
end
$$;
revoke all on function sextant_exec.swap_run(bigint, text, integer, jsonb) from public;
grant execute on function sextant_exec.swap_run(bigint, text, integer, jsonb) to sextant_tenant_reader;

-- A pipeline's models and entities, indexed like a dbt project (pipeline_<name>), so that
-- search_dbt_models, get_model_details and describe_table show their docs and lineage.
create or replace function sextant_private.index_pipeline_models(pipeline_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_p sextant.pipelines;
  v_load uuid := gen_random_uuid();
  v_project text;
  v_src text;
begin
  select * into v_p from sextant.pipelines as p where p.id = index_pipeline_models.pipeline_id;
  v_project := 'pipeline_' || v_p.name;
  v_src := v_p.source ->> 'name';
  insert into sextant_private.dbt_load_items (load_id, kind, item)
  select v_load, 'metadata', jsonb_build_object('dbt_schema_version', 'https://schemas.getdbt.com/dbt/manifest/v12.json',
           'project_name', v_project, 'generated_at', now(), 'dbt_version', 'sextant pipeline')
  union all
  select v_load, 'node', jsonb_build_object(
           'unique_id', 'source.' || v_project || '.' || v_src || '.' || (e ->> 'name'), 'name', e ->> 'name',
           'resource_type', 'source', 'package_name', v_project, 'schema', v_p.target_schema, 'identifier', e ->> 'name',
           'relation_name', format('%I.%I', v_p.target_schema, e ->> 'name'),
           'description', coalesce(e ->> 'description', 'Loaded by pipeline ' || v_p.name || ' from its ' || (v_p.source ->> 'kind') || ' source'),
           'original_file_path', 'pipeline ' || v_p.name)
  from jsonb_array_elements(v_p.entities) as e
  union all
  select v_load, 'node', jsonb_build_object(
           'unique_id', 'model.' || v_project || '.' || m.name, 'name', m.name, 'resource_type', 'model',
           'package_name', v_project, 'schema', v_p.target_schema, 'alias', m.name,
           'relation_name', format('%I.%I', v_p.target_schema, m.name),
           'config', jsonb_build_object('materialized', m.materialized),
           'description', m.description, 'raw_code', m.raw_sql, 'original_file_path', 'models/' || m.name || '.sql',
           'columns', (select coalesce(jsonb_object_agg(c ->> 'name', jsonb_build_object('name', c ->> 'name', 'description', c ->> 'description',
                                        'data_type', c ->> 'data_type')), '{}')
                         from jsonb_array_elements(m.columns) as c where c ->> 'name' is not null),
           'depends_on', jsonb_build_object('nodes',
             to_jsonb(array(select 'model.' || v_project || '.' || r from unnest(m.refs) as r)
                      || array(select 'source.' || v_project || '.' || s from unnest(m.sources) as s where s like v_src || '.%'))))
  from sextant.pipeline_models as m where m.pipeline_id = v_p.id
  union all
  -- Column tests (unique, not_null, ...) written in schema.yml.
  select v_load, 'node', jsonb_build_object(
           'unique_id', 'test.' || v_project || '.' || (t #>> '{}') || '_' || m.name || '_' || (c ->> 'name'),
           'name', (t #>> '{}') || '_' || m.name || '_' || (c ->> 'name'), 'resource_type', 'test', 'package_name', v_project,
           'column_name', c ->> 'name', 'test_metadata', jsonb_build_object('name', t #>> '{}'),
           'depends_on', jsonb_build_object('nodes', jsonb_build_array('model.' || v_project || '.' || m.name)))
  from sextant.pipeline_models as m, jsonb_array_elements(m.columns) as c, jsonb_array_elements(coalesce(c -> 'tests', '[]')) as t
  where m.pipeline_id = v_p.id and jsonb_typeof(t) = 'string';
  perform sextant_private.finish_dbt_load(v_p.tenant_slug, v_load, v_project, 'pipeline');
end
$$;
revoke all on function sextant_private.index_pipeline_models(bigint) from public;

-- Ends a run that will not be retried (failed, or cancelled when cancelling was asked), or puts
-- it back in the queue with the error of the attempt. Only the attempt that holds the run may:
-- a run another attempt took over (after missed heartbeats — another worker, or the same worker
-- process picking the job up again) is left alone. The staging schema goes; the old tables stay.
drop function if exists sextant_private.end_run(bigint, text, text);
drop function if exists sextant_private.end_run(bigint, text, text, text);
create or replace function sextant_private.end_run(run_id bigint, status text, error text, worker_id text, attempt integer)
returns boolean
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_done boolean;
begin
  if status not in ('failed', 'cancelled', 'queued') then
    raise exception 'end_run: bad status %', status;
  end if;
  update sextant.materialization_runs as r
  set status = end_run.status, error = left(end_run.error, 4000), heartbeat_at = now(),
      finished_at = case when end_run.status = 'queued' then null else now() end,
      current_step = case end_run.status when 'queued' then 'waiting to retry' when 'cancelled' then 'cancelled; old tables kept'
                                         else 'failed; old tables kept' end
  where r.id = end_run.run_id and r.status = 'running' and r.worker_id = end_run.worker_id and r.attempts = end_run.attempt
    and (end_run.status <> 'cancelled' or r.cancel_requested);
  v_done := found;
  if v_done then
    execute format('drop schema if exists %I cascade', 'sextant_stage_' || run_id);
  end if;
  return v_done;
end
$$;
revoke all on function sextant_private.end_run(bigint, text, text, text, integer) from public;
grant execute on function sextant_private.end_run(bigint, text, text, text, integer) to sextant_worker;

-- Which tables of a target schema a pipeline may replace: its own earlier output, or names
-- that are free. Returns the names that belong to something else.
create or replace function sextant_private.foreign_tables(pipeline_id bigint, schema_name text, table_names text[])
returns text[]
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(c.relname::text order by c.relname), '{}')
  from pg_catalog.pg_class as c
  join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
  where n.nspname = foreign_tables.schema_name and c.relname = any (table_names)
    and c.relkind in ('r', 'p', 'v', 'm', 'f')
    and not exists (select from sextant.materialized_tables as m
                    where m.schema_name = n.nspname and m.table_name = c.relname
                      and m.pipeline_id = foreign_tables.pipeline_id);
$$;
-- Called by swap_target only (the worker's own session no longer needs it).
revoke all on function sextant_private.foreign_tables(bigint, text, text[]) from public, sextant_worker;

-- Runs whose worker stopped sending heartbeats (killed, lost): the ids of those workers, so
-- graphile-worker can unlock their jobs for a retry; the runs go back to queued.
create or replace function sextant_private.reap_stale_runs(stale_after interval)
returns text[]
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_workers text[];
begin
  with stale as (
    update sextant.materialization_runs as r
    set status = 'queued', current_step = 'worker lost; waiting to retry',
        error = 'the worker stopped responding during attempt ' || r.attempts
    where r.status = 'running' and r.heartbeat_at < now() - stale_after
    returning r.worker_id
  )
  select array_agg(distinct worker_id) into v_workers from stale where worker_id is not null;
  -- Queued runs whose job is still locked by a worker that went away without recording the
  -- attempt (stopped or crashed while stopping). The lock itself must be old too: a live
  -- worker that has just locked the job is about to claim the run, and unlocking it then would
  -- start a second attempt beside the first.
  v_workers := coalesce(v_workers, '{}') || coalesce((
    select array_agg(distinct j.locked_by)
    from sextant.materialization_runs as r
    join graphile_worker._private_jobs as j on j.key = 'sextant_run_' || r.id
    where r.status = 'queued' and j.locked_by is not null and r.heartbeat_at < now() - stale_after
      and j.locked_at < now() - stale_after), '{}');
  -- Queued runs that lost their job (a worker that was taken over finished it) get a new one
  -- while attempts remain; runs whose job graphile-worker gave up on, or that used 5
  -- attempts, end as failed. Never stuck.
  perform graphile_worker.add_job('sextant_materialize', json_build_object('run_id', r.id),
            queue_name => 'sextant_pipeline_' || r.pipeline_id, job_key => 'sextant_run_' || r.id, max_attempts => 5 - r.attempts)
  from sextant.materialization_runs as r
  where r.status = 'queued' and r.attempts between 1 and 4
    and not exists (select from graphile_worker.jobs as j where j.key = 'sextant_run_' || r.id);
  update sextant.materialization_runs as r
  set status = 'failed', finished_at = now(), current_step = 'failed; old tables kept',
      error = coalesce(r.error, 'the job failed') || ' (gave up after ' || r.attempts || ' attempts)'
  where r.status = 'queued' and r.attempts > 0
    and not exists (select from graphile_worker.jobs as j
                    where j.key = 'sextant_run_' || r.id and j.attempts < j.max_attempts);
  return coalesce(v_workers, '{}');
end
$$;
revoke all on function sextant_private.reap_stale_runs(interval) from public;
grant execute on function sextant_private.reap_stale_runs(interval) to sextant_worker;

-- Every minute (graphile-worker crontab): queue scheduled pipelines, drop expired schemas,
-- drop staging schemas no run owns any more.
create or replace function sextant_private.scheduler_tick(at timestamptz)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_queued integer := 0;
  v_dropped integer := 0;
  v_stale text;
begin
  insert into sextant.materialization_runs (tenant_slug, pipeline_id, trigger, requested_by)
  select p.tenant_slug, p.id, 'schedule', 'schedule'
  from sextant.pipelines as p
  where p.schedule is not null and sextant_exec.cron_matches(p.schedule, at)
  on conflict (pipeline_id) where status in ('queued', 'running') do nothing;
  get diagnostics v_queued = row_count;
  delete from sextant.tenant_schemas as s
  where s.provisioned and s.expires_at <= at
    and not exists (select from sextant.pipelines as p where p.target_schema = s.schema_name);
  get diagnostics v_dropped = row_count;
  for v_stale in select n.nspname from pg_catalog.pg_namespace as n
                 where sextant_exec.is_stage_schema(n.nspname)
                   and not exists (select from sextant.materialization_runs as r
                                   where 'sextant_stage_' || r.id = n.nspname and r.status in ('queued', 'running'))
  loop
    execute format('drop schema if exists %I cascade', v_stale);
  end loop;
  return jsonb_build_object('queued', v_queued, 'schemas_dropped', v_dropped);
end
$$;
revoke all on function sextant_private.scheduler_tick(timestamptz) from public;
grant execute on function sextant_private.scheduler_tick(timestamptz) to sextant_worker;

reset role;
