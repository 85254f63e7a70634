-- Area: materialization, pipelines and runs as tenants see them (after materialize_models.sql).
-- Tools: list_pipelines, run_materialization, get_materialization_status,
-- cancel_materialization (MCP; the same functions in GraphQL and psql); create_pipeline,
-- delete_pipeline, set_pipeline_secret (CLI, GraphQL, psql).
-- Invariants: tenants write pipelines and runs through RLS; privileged steps (enqueue a job,
-- encrypt a secret, grant the builder the target schema) happen in SECURITY DEFINER triggers
-- that trust only the checked row; secrets are never returned to a tenant; at most one run per
-- pipeline is queued or running (a partial unique index).

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

reset role;
