-- Area: dbt. Tools: list_dbt_models, search_dbt_models, get_model_details, get_project_summary
-- (MCP; GraphQL listDbtModels, searchDbtModels, getModelDetails, getProjectSummary; psql).
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

create or replace view sextant.dbt_models with (security_invoker = true) as
  select p.project_name, n.unique_id, n.name, n.resource_type, n.schema_name, n.alias, n.relation_name,
         n.materialization, n.description, n.tags, jsonb_array_length(n.columns) as column_count,
         n.owner, n.file_path, n.last_run_status, n.last_run_at
  from sextant.dbt_nodes as n
  join sextant.dbt_projects as p on p.id = n.project_id;
comment on column sextant.dbt_nodes.search_name is E'@behavior -*';
comment on column sextant.dbt_nodes.search_description is E'@behavior -*';
comment on column sextant.dbt_nodes.search_columns is E'@behavior -*';
comment on column sextant.dbt_nodes.search_rest is E'@behavior -*';

comment on view sextant.dbt_models is E'@behavior -list -connection\nModels and other nodes of the tenant''s dbt projects.';
grant select on sextant.dbt_models to sextant_tenant_reader;

create or replace function sextant.list_dbt_models(
  project text default null, schema_name text default null, materialization text default null, tag text default null,
  resource_type text default 'model', max_results integer default 100, page_offset integer default 0)
returns setof sextant.dbt_models
language plpgsql stable
as $$
begin
  if max_results is null or max_results not between 1 and 1000 then
    raise exception 'max_results must be between 1 and 1000, got %', max_results using errcode = 'SX400';
  end if;
  return query
    select m.* from sextant.dbt_models as m
    where (list_dbt_models.project is null or m.project_name = list_dbt_models.project)
      and (list_dbt_models.schema_name is null or lower(m.schema_name) = lower(list_dbt_models.schema_name))
      and (list_dbt_models.materialization is null or m.materialization = list_dbt_models.materialization)
      and (list_dbt_models.tag is null or list_dbt_models.tag = any(m.tags))
      and (list_dbt_models.resource_type is null or m.resource_type = list_dbt_models.resource_type)
    order by m.project_name, m.name, m.unique_id
    limit max_results offset greatest(page_offset, 0);
end
$$;
comment on function sextant.list_dbt_models(text, text, text, text, text, integer, integer) is
  E'dbt models (or other resource types) of your projects, filtered by project, schema, materialization or tag.';
grant execute on function sextant.list_dbt_models(text, text, text, text, text, integer, integer) to sextant_tenant_reader;

-- The thesaurus is large and not the tenants' to read: search reaches it through this.
revoke select on sextant_exec.thesaurus from sextant_tenant_reader;
comment on table sextant_exec.thesaurus is
  E'English word stems and related stems (WordNet 3.1 and GloVe neighbours, loaded from data/thesaurus.tsv.gz), for query expansion in search.';

create or replace function sextant_exec.related_terms(stems text[])
returns table (term text, related text, weight real)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select t.term, t.related, t.weight from sextant_exec.thesaurus as t where t.term = any (stems) limit 2000;
$$;
comment on function sextant_exec.related_terms(text[]) is E'Related English stems (WordNet and GloVe neighbours) of some stems, for search.';
revoke all on function sextant_exec.related_terms(text[]) from public;
grant execute on function sextant_exec.related_terms(text[]) to sextant_tenant_reader;

-- A search question, checked: over 1,000 characters is refused rather than searched word by
-- word (a pasted document would cost seconds and find nothing better).
create or replace function sextant_exec.search_question(question text)
returns text
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if length(question) > 1000 then
    raise exception 'the question is too long (% characters; at most 1,000)', length(question)
      using errcode = 'SX400', hint = 'Ask with a few words, e.g. "readmission rate by hospital".';
  end if;
  return coalesce(question, '');
end
$$;
grant execute on function sextant_exec.search_question(text) to sextant_tenant_reader;

-- A question's vector from the embeddings endpoint, checked and scaled to unit length (null when
-- none was given): at most 4,096 finite numbers, not all zero.
create or replace function sextant_exec.search_vector(v real[])
returns real[]
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  norm float8;
begin
  if v is null then
    return null;
  end if;
  if cardinality(v) not between 1 and 4096 or array_ndims(v) <> 1 then
    raise exception 'a vector must have 1 to 4,096 numbers, got %', cardinality(v)
      using errcode = 'SX400', hint = 'Pass the embedding of the question from the same model as the project''s vectors, or leave it out.';
  end if;
  select sqrt(sum(x::float8 * x)) into norm from unnest(v) as x;
  if norm is null or norm = 0 or norm = 'NaN'::float8 or norm = 'Infinity'::float8 then
    raise exception 'a vector must be finite numbers, not all zero'
      using errcode = 'SX400', hint = 'Pass the embedding of the question, or leave it out.';
  end if;
  return array(select (x / norm)::real from unnest(v) with ordinality as t(x, i) order by i);
end
$$;
grant execute on function sextant_exec.search_vector(real[]) to sextant_tenant_reader;

create or replace function sextant.search_dbt_models(query text, max_results integer default 10, question_embedding real[] default null,
                                                     embedding_model text default null)
returns setof sextant.dbt_search_hit
language sql stable
-- Not inlined: planned once per session and role, then reused (the plan does not depend on
-- the question, whose words are looked up through the index in any case).
set plan_cache_mode = force_generic_plan
as $$
  -- Reads the project's inverted index (sextant.dbt_postings), so its cost follows the
  -- question's words, not the project's size. Each word of the question (an English stem)
  -- counts once, by its best match in a node: itself, or one of its 6 strongest related stems
  -- that the project uses (WordNet and GloVe, sextant_exec.thesaurus; "drugstore" finds
  -- "pharmacy") at 0.7 of the link's weight; a match weighs its field (name 3, description 1.5,
  -- columns 0.7, tags and SQL 0.3) times how rare the stem is in the tenant's projects (idf).
  -- Nodes that match more of the question's words rank higher (coordination). Trigram
  -- similarity of the name adds typo and partial-name matches (candidates from the name's
  -- trigrams in the same index). With the question's vector (question_embedding, from the
  -- configured embeddings endpoint), the 30 nodes nearest in meaning join the candidates and
  -- the two rankings are fused by reciprocal rank (1/(60 + rank) each).
  with question as (select sextant_exec.search_question(search_dbt_models.query) as text),
  words as (
    select distinct s.stem as term
    from question, unnest(tsvector_to_array(to_tsvector('english', replace(question.text, '_', ' ')))) as s(stem)
  ),
  expansions as (
    select w.term, w.term as stem, 1.0::float8 as qweight from words as w
    union all
    select r.term, r.related, 0.7 * r.weight
    from sextant_exec.related_terms(array(select term from words)) as r
    where r.related not in (select term from words)
  ),
  df as (
    select l.stem, sum(l.df)::float8 as n
    from sextant.dbt_lexemes as l
    where l.stem = any (array(select stem from expansions))
    group by l.stem
  ),
  total as (select greatest(coalesce(sum(p.searchable_nodes), 0), 1)::float8 as n from sextant.dbt_projects as p),
  used as (
    select * from (
      select e.term, e.stem, e.qweight * ln(1 + t.n / (1 + df.n)) as w,
             row_number() over (partition by e.term order by e.stem = e.term desc, e.qweight desc, df.n, e.stem) as k
      from expansions as e join df on df.stem = e.stem cross join total as t) as ranked
    where ranked.k <= 7
  ),
  importance as (select sum(x.w) as w, count(*) as n from (select max(u.w) as w from used as u group by u.term) as x),
  per_word as (
    select p.project_id, p.unique_id, u.term, max(u.w * p.weight) as score,
           bit_or(p.fields) filter (where u.stem = u.term) as own_fields
    from used as u
    join sextant.dbt_postings as p on p.term = u.stem
    where p.term = any (array(select stem from used))
    group by p.project_id, p.unique_id, u.term
  ),
  lexical as (
    select pw.project_id, pw.unique_id,
           sum(pw.score) / i.w * count(*) / i.n as score,
           coalesce(bit_or(pw.own_fields), 0) as own_fields
    from per_word as pw cross join importance as i
    group by pw.project_id, pw.unique_id, i.w, i.n
  ),
  q as (select x.raw, public.show_trgm(x.raw) as trgms from (select lower(btrim(question.text)) as raw from question) as x),
  -- Names that share the question's less common trigrams (a trigram in more than a tenth of
  -- the nodes tells little and would read most of the index): candidates for typos and
  -- partial names, then measured exactly with pg_trgm below.
  rare_trigrams as (
    select l.stem
    from sextant.dbt_lexemes as l
    where l.stem = any (array(select '#' || t from q, unnest(q.trgms) as t))
    group by l.stem
    having sum(l.df) <= greatest(20, (select x.n from total as x) / 10)
  ),
  by_name as (
    select p.project_id, p.unique_id
    from sextant.dbt_postings as p
    where p.term = any (array(select stem from rare_trigrams))
    group by p.project_id, p.unique_id
    order by count(*) desc
    limit greatest(least(coalesce(search_dbt_models.max_results, 10), 100), 30)
  ),
  pool as (
    select project_id, unique_id from (select l.project_id, l.unique_id from lexical as l
                                         order by l.score desc limit 2 * greatest(least(coalesce(search_dbt_models.max_results, 10), 100), 15)) as top
    union
    select project_id, unique_id from by_name
  ),
  scored as (
    select x.project_id, x.unique_id, l.own_fields, l.unique_id is not null as lexical,
           coalesce(l.score, 0) + 2 * x.prior * x.name_sim as score, x.name_sim
    from (select pl.project_id, pl.unique_id, sextant_exec.dbt_search_prior(n.name, n.materialization, n.description) as prior,
                 greatest(public.similarity(n.name, q.raw), public.word_similarity(q.raw, n.name)) as name_sim,
                 public.similarity(n.name, q.raw) >= 0.3 or public.word_similarity(q.raw, n.name) >= 0.6 as close
          from pool as pl
          cross join q
          join sextant.dbt_nodes as n on n.project_id = pl.project_id and n.unique_id = pl.unique_id) as x
    left join lexical as l on l.project_id = x.project_id and l.unique_id = x.unique_id
    where l.unique_id is not null or x.close
  ),
  ranked as (
    select s.*, row_number() over (order by s.score desc, s.unique_id) as rank from scored as s
  ),
  qv as (select x.v, sextant_exec.vector_signs(x.v) as signs
         from (select sextant_exec.search_vector(search_dbt_models.question_embedding) as v) as x),
  -- First pass: the nodes whose vectors' signs differ least from the question's (Hamming
  -- distance, cheap); only these are compared exactly — 50,000 numbers in all, about 10 ms, since
  -- SQL multiplies some 5 million numbers a second (195 nodes at 256 dimensions, 32 at 1,536).
  candidates as (
    select e.project_id, e.unique_id, e.embedding
    from qv
    -- the signs' length, not the vector's: reading each vector's length would fetch the vector itself
    join sextant.dbt_embeddings as e on length(e.signs) = cardinality(qv.v)
    where qv.v is not null and (search_dbt_models.embedding_model is null or e.model = search_dbt_models.embedding_model)
    order by pg_catalog.bit_count(e.signs # qv.signs), e.unique_id
    limit greatest(30, 50000 / coalesce((select cardinality(qv.v) from qv), 1))
  ),
  nearest as (
    select c.project_id, c.unique_id, row_number() over (order by d.sim desc, c.unique_id) as rank
    from candidates as c
    cross join qv
    cross join lateral (select sum(a * b) as sim from unnest(c.embedding, qv.v) as t(a, b)) as d
    order by d.sim desc, c.unique_id
    limit 30
  ),
  fused as (
    select coalesce(r.project_id, v.project_id) as project_id, coalesce(r.unique_id, v.unique_id) as unique_id,
           coalesce(r.own_fields, 0) as own_fields, coalesce(r.lexical, false) as lexical, coalesce(r.name_sim, 0) as name_sim,
           v.rank as meaning_rank,
           case when (select qv.v from qv) is null then r.score
                else coalesce(1.0 / (60 + r.rank), 0) + coalesce(1.0 / (60 + v.rank), 0) end as score
    from ranked as r
    full join nearest as v on v.project_id = r.project_id and v.unique_id = r.unique_id
    order by 7 desc, 2
    limit least(greatest(coalesce(search_dbt_models.max_results, 10), 1), 100)
  )
  select p.project_name, n.unique_id, n.name, n.resource_type, n.relation_name, n.description,
         round(s.score::numeric, 4)::float8,
         array_remove(array[
           case when s.name_sim > 0.3 or s.own_fields & 1 > 0 then 'name' end,
           case when s.own_fields & 2 > 0 then 'description' end,
           case when s.own_fields & 4 > 0 then 'columns' end,
           case when s.own_fields & 8 > 0 then 'tags/sql' end,
           case when s.lexical and s.own_fields = 0 then 'related words' end,
           case when s.meaning_rank <= 10 then 'meaning' end
         ], null)
  from fused as s
  join sextant.dbt_nodes as n on n.project_id = s.project_id and n.unique_id = s.unique_id
  join sextant.dbt_projects as p on p.id = s.project_id
  order by s.score desc, s.unique_id;
$$;
comment on function sextant.search_dbt_models(text, integer, real[], text) is
  E'Plain-English search over your dbt models: names, descriptions, columns, tags and SQL, ranked, with the fields that matched. question_embedding (optional): the question''s vector, blended in; embedding_model (optional): compare it only with vectors of that model.';
grant execute on function sextant.search_dbt_models(text, integer, real[], text) to sextant_tenant_reader;

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

-- Projects loaded before the search index existed get theirs now, once.
select sextant_private.index_dbt_search(p.id)
from sextant.dbt_projects as p
where p.searchable_nodes is null;
