-- Area: dbt, one model's details and the projects' summary (after dbt_search.sql). Tools:
-- get_model_details, get_project_summary (MCP; GraphQL getModelDetails, getProjectSummary; psql).
-- Invariants: every row is tenant-scoped (RLS on tenant_slug, security_invoker views);
-- lineage depth is bounded.

set role sextant_owner;

create or replace function sextant.get_model_details(model text, lineage_depth integer default 2)
returns sextant.dbt_model_details
language plpgsql stable
as $$
declare
  v_node sextant.dbt_nodes;
  v_project text;
  v_depth integer := least(greatest(coalesce(lineage_depth, 2), 0), 10);
  v_result sextant.dbt_model_details;
begin
  select n.* into v_node from sextant.dbt_nodes as n
  where n.unique_id = model or (n.name = model and n.resource_type in ('model', 'source', 'seed', 'snapshot'))
  order by n.unique_id = model desc, n.resource_type = 'model' desc
  limit 1;
  if v_node.unique_id is null then
    raise exception 'no dbt model named %', model
      using errcode = 'SX404', hint = 'Call search_dbt_models or list_dbt_models to find the name or unique_id.';
  end if;
  select p.project_name into v_project from sextant.dbt_projects as p where p.id = v_node.project_id;

  with recursive up(unique_id, depth) as (
    select d, 1 from unnest(v_node.depends_on) as d
    union
    select d, up.depth + 1 from up
    join sextant.dbt_nodes as n on n.project_id = v_node.project_id and n.unique_id = up.unique_id
    cross join unnest(n.depends_on) as d
    where up.depth < v_depth
  ),
  down(unique_id, depth) as (
    select n.unique_id, 1 from sextant.dbt_nodes as n
    where n.project_id = v_node.project_id and n.depends_on @> array[v_node.unique_id] and n.resource_type <> 'test'
    union
    select n.unique_id, down.depth + 1 from down
    join sextant.dbt_nodes as n on n.project_id = v_node.project_id and n.depends_on @> array[down.unique_id]
    where down.depth < v_depth and n.resource_type <> 'test'
  )
  select v_project, v_node.unique_id, v_node.name, v_node.resource_type, v_node.materialization, v_node.relation_name,
         v_node.description, v_node.columns, coalesce(v_node.compiled_code, v_node.raw_code), v_node.compiled_code is not null,
         v_node.tags, v_node.owner, v_node.file_path, v_node.last_run_status, v_node.last_run_at,
         (select coalesce(jsonb_agg(jsonb_build_object('unique_id', u.unique_id, 'name', n.name, 'resource_type', n.resource_type, 'depth', u.depth)
                                    order by u.depth, n.name), '[]')
            from (select unique_id, min(depth) as depth from up group by 1) as u
            join sextant.dbt_nodes as n on n.project_id = v_node.project_id and n.unique_id = u.unique_id
           where n.resource_type <> 'test' and v_depth > 0),
         (select coalesce(jsonb_agg(jsonb_build_object('unique_id', d.unique_id, 'name', n.name, 'resource_type', n.resource_type, 'depth', d.depth)
                                    order by d.depth, n.name), '[]')
            from (select unique_id, min(depth) as depth from down group by 1) as d
            join sextant.dbt_nodes as n on n.project_id = v_node.project_id and n.unique_id = d.unique_id
           where n.resource_type <> 'exposure' and v_depth > 0),
         (select coalesce(jsonb_agg(jsonb_build_object('unique_id', e.unique_id, 'name', e.name, 'owner', e.owner) order by e.name), '[]')
            from sextant.dbt_nodes as e
           where e.project_id = v_node.project_id and e.resource_type = 'exposure' and e.depends_on @> array[v_node.unique_id]),
         (select coalesce(jsonb_agg(jsonb_build_object('name', t.name, 'column', t.meta ->> 'column_name') order by t.name), '[]')
            from sextant.dbt_nodes as t
           where t.project_id = v_node.project_id and t.resource_type = 'test' and t.depends_on @> array[v_node.unique_id])
    into v_result;
  return v_result;
end
$$;
comment on function sextant.get_model_details(text, integer) is
  E'One dbt model by name or unique_id: description, columns with docs and tests, SQL (compiled when available), '
  'materialization, relation, upstream and downstream lineage to lineage_depth (default 2), exposures, last run.';
grant execute on function sextant.get_model_details(text, integer) to sextant_tenant_reader;

create or replace view sextant.dbt_project_summaries with (security_invoker = true) as
  select p.project_name, p.dbt_version, p.manifest_schema, p.generated_at, p.loaded_at,
         (select jsonb_object_agg(t.resource_type, t.n) from (select n.resource_type, count(*) as n from sextant.dbt_nodes as n
            where n.project_id = p.id group by 1) as t) as counts_by_type,
         (select jsonb_object_agg(coalesce(t.materialization, 'none'), t.n) from (select n.materialization, count(*) as n from sextant.dbt_nodes as n
            where n.project_id = p.id and n.resource_type = 'model' group by 1) as t) as models_by_materialization,
         (select jsonb_object_agg(coalesce(t.schema_name, 'none'), t.n) from (select n.schema_name, count(*) as n from sextant.dbt_nodes as n
            where n.project_id = p.id and n.resource_type = 'model' group by 1) as t) as models_by_schema,
         (select round(avg((n.description is not null)::int), 3) from sextant.dbt_nodes as n
            where n.project_id = p.id and n.resource_type = 'model')::float8 as models_documented,
         (select round(avg((c ->> 'description' is not null)::int), 3) from sextant.dbt_nodes as n, jsonb_array_elements(n.columns) as c
            where n.project_id = p.id and n.resource_type = 'model')::float8 as columns_documented
  from sextant.dbt_projects as p;
comment on view sextant.dbt_project_summaries is E'@behavior -list -connection\nOne row per dbt project: counts, documentation coverage and load freshness.';
grant select on sextant.dbt_project_summaries to sextant_tenant_reader;

create or replace function sextant.get_project_summary()
returns setof sextant.dbt_project_summaries
language sql stable
as $$
  select * from sextant.dbt_project_summaries order by project_name;
$$;
comment on function sextant.get_project_summary() is
  E'Your dbt projects: counts by type, schema and materialization, documentation coverage, and when each was generated and loaded.';
grant execute on function sextant.get_project_summary() to sextant_tenant_reader;

reset role;
