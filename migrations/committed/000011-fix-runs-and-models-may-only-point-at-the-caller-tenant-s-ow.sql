--! Previous: sha1:942ef4906a675d18b4017650be3d4bc748f17022
--! Hash: sha1:5d7651895a1814413cf74fb7fa83b4b5eb48484a
--! Message: fix: runs and models may only point at the caller tenant's own pipelines

-- Fix: a tenant admin could insert a run, or a model, that points at another tenant's
-- pipeline (RLS checked the row's own tenant_slug only). The row's pipeline must now be one
-- the caller can see, i.e. its own tenant's.

set local role sextant_owner;

drop policy if exists request_runs on sextant.materialization_runs;
create policy request_runs on sextant.materialization_runs for insert
  with check (tenant_slug = (select sextant.current_tenant())
              and (select sextant.current_access_level()) in ('analyst', 'admin')
              and exists (select from sextant.pipelines as p
                          where p.id = pipeline_id and p.tenant_slug = (select sextant.current_tenant())));

drop policy if exists admin_writes on sextant.pipeline_models;
create policy admin_writes on sextant.pipeline_models for all
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin')
  with check (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin'
              and exists (select from sextant.pipelines as p
                          where p.id = pipeline_id and p.tenant_slug = (select sextant.current_tenant())));

reset role;
