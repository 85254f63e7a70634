-- Area: metrics. Counts for GET /metrics (src/metrics/), read by the server's login.
-- Invariants:
--   * numbers only, across every tenant: no names, SQL, errors or anything a tenant wrote;
--   * SECURITY DEFINER so the authenticator needs no rights on the runs or the job queue;
--   * bounded: one grouped count per table, whatever the number of rows.

set role sextant_owner;

create or replace function sextant_private.metrics_snapshot()
returns json
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_runs json;
  v_jobs json;
begin
  select coalesce(json_object_agg(s.status, s.n), '{}') into v_runs
  from (select r.status, count(*) as n from sextant.materialization_runs as r group by r.status) as s;
  -- graphile-worker's own table (its schema is installed by the migrator): the job's state as
  -- the worker sees it. Dynamic, so this file also applies before the worker schema exists.
  if pg_catalog.to_regclass('graphile_worker._private_jobs') is not null then
    execute $q$
      select coalesce(json_object_agg(s.state, s.n), '{}')
      from (select case when j.locked_at is not null then 'running'
                        when j.attempts >= j.max_attempts then 'failed'
                        when j.run_at > now() then 'scheduled'
                        else 'ready' end as state,
                   count(*) as n
            from graphile_worker._private_jobs as j
            group by 1) as s
    $q$ into v_jobs;
  end if;
  return json_build_object('runs', v_runs, 'jobs', coalesce(v_jobs, '{}'::json));
end
$$;
comment on function sextant_private.metrics_snapshot() is
  E'Materialization runs by status and worker jobs by state, as counts (for GET /metrics).';
revoke all on function sextant_private.metrics_snapshot() from public;
grant execute on function sextant_private.metrics_snapshot() to sextant_authenticator;

reset role;
