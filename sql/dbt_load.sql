-- Area: dbt, loading (then dbt_search.sql: list and search; dbt_details.sql: details and summary).
-- Tools: `sextant dbt load`, POST /dbt/upload; the search index and vectors each load builds.
-- Loading: `sextant dbt load` streams artifacts into sextant_private.dbt_load_items in
-- batches, then finish_dbt_load turns them into nodes — all in one transaction, so readers
-- see the old project or the new one, never half of either, and a failed load changes nothing.
-- Invariants: every row is tenant-scoped (RLS on tenant_slug); manifests v7-v12 are read
-- (raw_sql/raw_code, compiled_sql/compiled_code, missing project_name, ephemeral models).

set role sextant_owner;

-- SECURITY DEFINER (both loading functions): the server loads uploads as the authenticator,
-- passing the tenant of a verified admin principal; the CLI calls them as admin.
create or replace function sextant_private.stage_dbt_items(load_id uuid, kind text, items json)
returns integer
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  with ins as (
    insert into sextant_private.dbt_load_items (load_id, kind, item)
    select stage_dbt_items.load_id, stage_dbt_items.kind, e.value::jsonb
    from json_array_elements(items) as e
    returning 1
  )
  select count(*)::integer from ins;
$$;
comment on function sextant_private.stage_dbt_items(uuid, text, json) is E'Stages a batch of artifact items for a load.';
revoke all on function sextant_private.stage_dbt_items(uuid, text, json) from public;
grant execute on function sextant_private.stage_dbt_items(uuid, text, json) to sextant_authenticator;

-- A node's search prior: staging and intermediate steps (dbt's stg_/int_ naming) 0.8,
-- ephemeral models (not in the database) 0.7, undocumented nodes 0.9, multiplied; 1 for a
-- documented model an analyst can query.
create or replace function sextant_exec.dbt_search_prior(name text, materialization text, description text)
returns real
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select ((case when name ~ '(^|_)(stg|int|staging|intermediate)_' then 0.8 else 1 end)
        * (case when materialization = 'ephemeral' then 0.7 else 1 end)
        * (case when length(btrim(coalesce(description, ''))) < 4 then 0.9 else 1 end))::real;
$$;
grant execute on function sextant_exec.dbt_search_prior(text, text, text) to sextant_tenant_reader;

-- The kinds of dbt node search finds (tests and analyses are not), for the word index and the vectors alike.
create or replace function sextant_exec.dbt_searchable(resource_type text)
returns boolean
language sql immutable parallel safe
-- no SET clause, so the planner inlines it (it names no object)
as $$
  select resource_type in ('model', 'source', 'seed', 'snapshot', 'exposure', 'metric', 'semantic_model');
$$;

-- Postings go with their project (a trigger rather than a foreign key, see migration 000014).
create or replace function sextant_private.drop_dbt_postings()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  delete from sextant.dbt_postings as p where p.project_id = old.id;
  return old;
end
$$;
revoke all on function sextant_private.drop_dbt_postings() from public;
drop trigger if exists drop_postings on sextant.dbt_projects;
create trigger drop_postings after delete on sextant.dbt_projects
  for each row execute function sextant_private.drop_dbt_postings();

-- The search index of one project (sextant.dbt_postings, dbt_lexemes, searchable_nodes), made
-- from the per-field search vectors. Called by finish_dbt_load; at the end of this file for
-- projects loaded before the index existed.
create or replace function sextant_private.index_dbt_search(project uuid)
returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  delete from sextant.dbt_postings as p where p.project_id = index_dbt_search.project;
  delete from sextant.dbt_lexemes as l where l.project_id = index_dbt_search.project;
  insert into sextant.dbt_postings (project_id, tenant_slug, term, unique_id, weight, fields)
  select n.project_id, n.tenant_slug, f.term, n.unique_id, sum(f.weight) * prior.w, bit_or(f.bit)
  from sextant.dbt_nodes as n
  -- once per node: OFFSET 0 keeps the planner from evaluating it once per posting
  cross join lateral (select sextant_exec.dbt_search_prior(n.name, n.materialization, n.description) as w offset 0) as prior
  cross join lateral (
    select unnest(tsvector_to_array(n.search_name)), 3.0::real, 1::smallint
    union all select unnest(tsvector_to_array(n.search_description)), 1.5, 2
    union all select unnest(tsvector_to_array(n.search_columns)), 0.7, 4
    union all select unnest(tsvector_to_array(n.search_rest)), 0.3, 8
    union all select '#' || t, 0, 16 from unnest(public.show_trgm(n.name)) as t
  ) as f(term, weight, bit)
  where n.project_id = index_dbt_search.project
    and sextant_exec.dbt_searchable(n.resource_type)
  group by n.project_id, n.tenant_slug, f.term, n.unique_id, prior.w;
  insert into sextant.dbt_lexemes (project_id, tenant_slug, stem, df)
  select p.project_id, min(p.tenant_slug), p.term, count(*)
  from sextant.dbt_postings as p
  where p.project_id = index_dbt_search.project
  group by p.project_id, p.term;
  update sextant.dbt_projects as p
  set searchable_nodes = (select count(distinct x.unique_id) from sextant.dbt_postings as x where x.project_id = p.id)
  where p.id = index_dbt_search.project;
  -- Fresh statistics at once: search plans are generic and kept per session, and a plan made
  -- before autovacuum's first look at a new index ran 20 times slower (a bounded sample).
  analyze sextant.dbt_postings, sextant.dbt_lexemes, sextant.dbt_nodes, sextant.dbt_projects;
$$;
revoke all on function sextant_private.index_dbt_search(uuid) from public;

-- What each searchable node of a project is embedded from: its name as words, description and
-- documented columns (at most 2,000 characters).
create or replace function sextant_private.dbt_embedding_texts(project uuid)
returns table (unique_id text, text text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select n.unique_id,
         left(concat_ws('. ', replace(n.name, '_', ' '), n.description,
                        'Columns: ' || nullif((select string_agg(concat_ws(': ', replace(c ->> 'name', '_', ' '), c ->> 'description'), '; ' order by k)
                                                 from jsonb_array_elements(n.columns) with ordinality as x(c, k)), '')), 2000)
  from sextant.dbt_nodes as n
  where n.project_id = dbt_embedding_texts.project
    and sextant_exec.dbt_searchable(n.resource_type)
  order by n.unique_id;
$$;
revoke all on function sextant_private.dbt_embedding_texts(uuid) from public;
grant execute on function sextant_private.dbt_embedding_texts(uuid) to sextant_authenticator;

-- The sign of each number of a vector, one bit each (for the cheap first pass of search).
create or replace function sextant_exec.vector_signs(v real[])
returns bit varying
language sql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select array_to_string(array(select case when x > 0 then '1' else '0' end from unnest(v) with ordinality as t(x, k) order by k), '')::bit varying;
$$;
grant execute on function sextant_exec.vector_signs(real[]) to sextant_tenant_reader;

-- Vectors of a project's nodes from the embeddings endpoint, stored after the load (the
-- loader calls this in one transaction, in batches; `replace` on the first batch clears the
-- project's earlier vectors). Nodes that are no longer in the project are skipped.
create or replace function sextant_private.store_dbt_embeddings(project uuid, model text, items jsonb, replace boolean)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  stored integer;
begin
  if replace then
    delete from sextant.dbt_embeddings as e where e.project_id = store_dbt_embeddings.project;
  end if;
  insert into sextant.dbt_embeddings (project_id, tenant_slug, unique_id, model, embedding, signs)
  select x.project_id, x.tenant_slug, x.unique_id, store_dbt_embeddings.model, x.v, sextant_exec.vector_signs(x.v)
  from (select n.project_id, n.tenant_slug, n.unique_id,
               sextant_exec.search_vector(array(select x::real from jsonb_array_elements_text(i.value -> 'embedding') with ordinality as v(x, k) order by k)) as v
        from jsonb_array_elements(items) as i
        join sextant.dbt_nodes as n on n.project_id = store_dbt_embeddings.project and n.unique_id = i.value ->> 'unique_id') as x
  on conflict (project_id, unique_id) do update set model = excluded.model, embedding = excluded.embedding, signs = excluded.signs;
  get diagnostics stored = row_count;
  return stored;
end
$$;
revoke all on function sextant_private.store_dbt_embeddings(uuid, text, jsonb, boolean) from public;
grant execute on function sextant_private.store_dbt_embeddings(uuid, text, jsonb, boolean) to sextant_authenticator;

create or replace function sextant_private.finish_dbt_load(slug text, load_id uuid, project_override text, source text)
returns sextant.dbt_projects
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_meta jsonb := (select i.item from sextant_private.dbt_load_items as i
                    where i.load_id = finish_dbt_load.load_id and i.kind = 'metadata' limit 1);
  v_name text;
  v_project sextant.dbt_projects;
begin
  if not exists (select from sextant.tenants as t where t.slug = finish_dbt_load.slug) then
    raise exception 'tenant % does not exist', slug using errcode = 'SX404';
  end if;
  if v_meta is null or v_meta ->> 'dbt_schema_version' !~ '/manifest/v(\d+)\.json$' then
    raise exception 'no dbt manifest metadata was found in this load'
      using errcode = 'SX400', hint = 'Point at a dbt target directory with manifest.json (schema v7 or later).';
  end if;
  if substring(v_meta ->> 'dbt_schema_version' from '/manifest/v(\d+)\.json$')::int < 7 then
    raise exception 'manifest schema % is too old', v_meta ->> 'dbt_schema_version'
      using errcode = 'SX400', hint = 'Sextant reads manifests v7 (dbt 1.3) and later.';
  end if;
  -- Older manifests (v7-v9) have no project_name: take the package that owns most models.
  v_name := coalesce(nullif(project_override, ''), v_meta ->> 'project_name',
    (select i.item ->> 'package_name' from sextant_private.dbt_load_items as i
      where i.load_id = finish_dbt_load.load_id and i.kind = 'node' and i.item ->> 'resource_type' = 'model'
      group by 1 order by count(*) desc, 1 limit 1), 'dbt_project');

  delete from sextant.dbt_projects as p where p.tenant_slug = slug and p.project_name = v_name;
  insert into sextant.dbt_projects (tenant_slug, project_name, dbt_version, manifest_schema, generated_at, invocation_id, source)
  values (slug, v_name, v_meta ->> 'dbt_version', v_meta ->> 'dbt_schema_version',
          (v_meta ->> 'generated_at')::timestamptz, v_meta ->> 'invocation_id', finish_dbt_load.source)
  returning * into v_project;

  insert into sextant.dbt_nodes (project_id, tenant_slug, unique_id, name, resource_type, package_name, database_name,
      schema_name, alias, relation_name, materialization, description, columns, raw_code, compiled_code, tags, meta,
      owner, file_path, depends_on)
  select v_project.id, slug, n ->> 'unique_id',
         coalesce(n ->> 'name', n ->> 'unique_id'),
         n ->> 'resource_type',
         n ->> 'package_name',
         n ->> 'database',
         n ->> 'schema',
         coalesce(n ->> 'alias', n ->> 'identifier', n ->> 'name'),
         n ->> 'relation_name',
         n -> 'config' ->> 'materialized',
         nullif(coalesce(n ->> 'description', n ->> 'label'), ''),
         coalesce((select jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                      'name', c.value ->> 'name',
                      'description', nullif(c.value ->> 'description', ''),
                      'data_type', c.value ->> 'data_type',
                      'meta', nullif(c.value -> 'meta', '{}'::jsonb),
                      'tags', nullif(c.value -> 'tags', '[]'::jsonb))) order by c.ordinality)
                   from jsonb_each(coalesce(n -> 'columns', '{}')) with ordinality as c(key, value, ordinality)), '[]'),
         coalesce(n ->> 'raw_code', n ->> 'raw_sql'),
         coalesce(n ->> 'compiled_code', n ->> 'compiled_sql'),
         coalesce(array(select jsonb_array_elements_text(coalesce(n -> 'tags', '[]'))), '{}'),
         case when n ->> 'resource_type' = 'test'
              then jsonb_strip_nulls(jsonb_build_object(
                     'column_name', coalesce(n ->> 'column_name', n -> 'test_metadata' -> 'kwargs' ->> 'column_name'),
                     'test_name', n -> 'test_metadata' ->> 'name'))
              else coalesce(nullif(n -> 'meta', '{}'::jsonb), n -> 'config' -> 'meta', '{}') end,
         coalesce(n -> 'meta' ->> 'owner', n -> 'config' -> 'meta' ->> 'owner', n -> 'owner' ->> 'email', n -> 'owner' ->> 'name'),
         n ->> 'original_file_path',
         coalesce(array(select jsonb_array_elements_text(coalesce(n -> 'depends_on' -> 'nodes', '[]'))), '{}')
  from (select i.item as n from sextant_private.dbt_load_items as i
         where i.load_id = finish_dbt_load.load_id and i.kind = 'node') as items
  where n ->> 'unique_id' is not null and n ->> 'resource_type' is not null
  on conflict do nothing;

  -- Tests attach to a column of the node they test (column_name, v7+ kwargs, attached_node
  -- v10+): grouped once per (model, column), then joined.
  with tests as (
    select d as model_id, lower(tn.meta ->> 'column_name') as column_name,
           jsonb_agg(distinct coalesce(tn.meta ->> 'test_name', tn.name)) as tests
    from sextant.dbt_nodes as tn, unnest(tn.depends_on) as d
    where tn.project_id = v_project.id and tn.resource_type = 'test' and tn.meta ->> 'column_name' is not null
    group by 1, 2
  )
  update sextant.dbt_nodes as m
  set columns = (
    select jsonb_agg(case when t.tests is null then c.col else c.col || jsonb_build_object('tests', t.tests) end order by c.i)
    from jsonb_array_elements(m.columns) with ordinality as c(col, i)
    left join tests as t on t.model_id = m.unique_id and t.column_name = lower(c.col ->> 'name'))
  where m.project_id = v_project.id and m.resource_type <> 'test' and jsonb_array_length(m.columns) > 0
    and exists (select from tests as t where t.model_id = m.unique_id);

  -- Column types and table statistics from catalog.json, when it came along.
  update sextant.dbt_nodes as m
  set columns = case
        when jsonb_array_length(m.columns) = 0 then
          (select coalesce(jsonb_agg(jsonb_build_object('name', lower(cc.value ->> 'name'), 'catalog_type', cc.value ->> 'type')
                                     order by (cc.value ->> 'index')::int), '[]')
             from jsonb_each(c.item -> 'columns') as cc)
        else
          (select jsonb_agg(col.value || coalesce(
                    (select jsonb_build_object('catalog_type', cc.value ->> 'type')
                       from jsonb_each(c.item -> 'columns') as cc
                      where lower(cc.key) = lower(col.value ->> 'name') limit 1), '{}') order by col.ordinality)
             from jsonb_array_elements(m.columns) with ordinality as col(value, ordinality))
      end,
      catalog_stats = (select jsonb_object_agg(s.key, s.value -> 'value')
                         from jsonb_each(c.item -> 'stats') as s where (s.value ->> 'include')::boolean)
  from sextant_private.dbt_load_items as c
  where c.load_id = finish_dbt_load.load_id and c.kind = 'catalog_node'
    and m.project_id = v_project.id and m.unique_id = c.item ->> 'unique_id';

  -- Last run status and timing from run_results.json.
  update sextant.dbt_nodes as m
  set last_run_status = r.item ->> 'status',
      last_run_seconds = (r.item ->> 'execution_time')::numeric,
      last_run_at = (select max((t.value ->> 'completed_at')::timestamptz) from jsonb_array_elements(r.item -> 'timing') as t)
  from sextant_private.dbt_load_items as r
  where r.load_id = finish_dbt_load.load_id and r.kind = 'run_result'
    and m.project_id = v_project.id and m.unique_id = r.item ->> 'unique_id';

  update sextant.dbt_nodes as m
  set search_name = to_tsvector('english', replace(m.name, '_', ' ') || ' ' || coalesce(replace(m.alias, '_', ' '), '')),
      search_description = to_tsvector('english', coalesce(m.description, '')),
      search_columns = to_tsvector('english', coalesce((select string_agg(replace(c ->> 'name', '_', ' ') || ' ' || coalesce(c ->> 'description', ''), ' ')
                                                         from jsonb_array_elements(m.columns) as c), '')),
      search_rest = to_tsvector('english', array_to_string(m.tags, ' ') || ' ' || left(coalesce(m.raw_code, ''), 20000))
  where m.project_id = v_project.id;

  perform sextant_private.index_dbt_search(v_project.id);
  delete from sextant_private.dbt_load_items as i where i.load_id = finish_dbt_load.load_id;
  return v_project;
end
$$;
comment on function sextant_private.finish_dbt_load(text, uuid, text, text) is
  E'Replaces a tenant''s dbt project with the staged artifacts (call inside the loading transaction).';
revoke all on function sextant_private.finish_dbt_load(text, uuid, text, text) from public;
grant execute on function sextant_private.finish_dbt_load(text, uuid, text, text) to sextant_authenticator;

reset role;

-- Projects loaded before the search index existed get theirs now, once.
select sextant_private.index_dbt_search(p.id)
from sextant.dbt_projects as p
where p.searchable_nodes is null;
