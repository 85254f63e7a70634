-- Area: materialization, the worker's side (after materialize_pipelines.sql): claim a run,
-- report progress, end it, reap runs of dead workers, the scheduler's tick. Granted to
-- sextant_worker only; these cross tenants by design. The swap that ends a run successfully is
-- in materialize_swap.sql.
-- Invariants: only the attempt that holds a run may report on it or end it; a run taken over
-- after missed heartbeats is left to the new attempt.

set role sextant_owner;

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
  -- Runs that ended whose job is still locked: the worker went away (killed) after the run ended
  -- and before graphile-worker recorded the job as done. That lock would hold the pipeline's
  -- whole queue for graphile-worker's 4 hours. A live worker records it within milliseconds and
  -- sends heartbeats for the runs it is working on, so a lock that old from a worker with no
  -- fresh heartbeat is a dead worker's.
  v_workers := v_workers || coalesce((
    select array_agg(distinct j.locked_by)
    from sextant.materialization_runs as r
    join graphile_worker._private_jobs as j on j.key = 'sextant_run_' || r.id
    where r.status in ('succeeded', 'failed', 'cancelled') and j.locked_by is not null
      and j.locked_at < now() - stale_after
      and not exists (select from sextant.materialization_runs as l
                      where l.worker_id = j.locked_by and l.status = 'running' and l.heartbeat_at >= now() - stale_after)), '{}');
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
