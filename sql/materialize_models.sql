-- Area: materialization, models and the builder (after materialize_schemas.sql). Models are
-- dbt-style SELECTs with {{ ref }}, {{ source }} and {{ config }}; order_models checks them and
-- returns the build order, render_model resolves their Jinja for one run.
-- Invariants: model SQL runs only inside the tenant's SECURITY DEFINER builder function, owned
-- by sextant_t_<slug>__builder (reads only that tenant's schemas; cannot change role), as one
-- read-only SELECT; the builder role is also the login the worker loads and swaps with.

set role sextant_owner;

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
