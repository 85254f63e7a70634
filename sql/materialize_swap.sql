-- Area: materialization, the swap (after materialize_worker.sql). swap_run is called once per
-- successful run by the worker, logged in as the tenant's builder, and is callable from psql.
-- Invariants: a run builds everything in its own staging schema and moves it into the target
-- schema in one transaction: readers see the old tables or the complete new ones; the DDL runs
-- with the builder's rights only (SECURITY INVOKER); only the builder of the run's tenant may
-- end it, with tables of the pipeline's target schema named after its entities and models.

set role sextant_owner;

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

-- The run, when this session is the builder of the run's own tenant (the swap runs logged in as
-- that builder); SX403 otherwise. The one check finish_build and swap_target share.
create or replace function sextant_private.builder_run(run_id bigint)
returns sextant.materialization_runs
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run sextant.materialization_runs;
begin
  select * into v_run from sextant.materialization_runs as r where r.id = builder_run.run_id;
  if v_run.id is null or session_user::text is distinct from 'sextant_t_' || v_run.tenant_slug || '__builder' then
    raise exception 'run % is not this session''s to finish', run_id using errcode = 'SX403';
  end if;
  return v_run;
end
$$;
revoke all on function sextant_private.builder_run(bigint) from public;

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
  v_run := sextant_private.builder_run(run_id);
  select * into v_pipeline from sextant.pipelines as p where p.id = v_run.pipeline_id;
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
  v_run := sextant_private.builder_run(run_id);
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

reset role;
