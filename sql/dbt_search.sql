-- Area: dbt, list and search (after dbt_load.sql). Tools: list_dbt_models, search_dbt_models
-- (MCP; GraphQL listDbtModels, searchDbtModels; psql).
-- Invariants: every row is tenant-scoped (RLS on tenant_slug, security_invoker views); a
-- question is bounded (1,000 characters) before it is searched.

set role sextant_owner;

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
  perform sextant.require_max_results(max_results);
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

reset role;
