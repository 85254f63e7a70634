-- Area: knowledge. Tools: get_knowledge, search_knowledge, save_learning (MCP); the same
-- functions in GraphQL (plus create/update mutations on knowledge_notes, knowledge_entries
-- and reviewLearning) and from psql. Knowledge also appears in describe_table.
-- Invariants: every row belongs to the current tenant (default + RLS with check); viewers
-- read, analysts and admins write, only admins confirm or reject learnings.

set role sextant_owner;

comment on column sextant.knowledge_notes.search is E'@behavior -*';
comment on column sextant.knowledge_entries.search is E'@behavior -*';
comment on column sextant.learnings.search is E'@behavior -*';
comment on column sextant.knowledge_notes.tenant_slug is E'@behavior -insert -update';
comment on column sextant.knowledge_entries.tenant_slug is E'@behavior -insert -update';

-- A table reference as 'schema.table', resolved against what the tenant can read.
create or replace function sextant_exec.table_ref(table_name text)
returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select n.nspname || '.' || c.relname
  from pg_catalog.pg_class as c
  join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
  where c.oid = sextant_exec.resolve_table(table_name, null);
$$;
comment on function sextant_exec.table_ref(text) is E'schema.table for a readable table named by the caller.';
grant execute on function sextant_exec.table_ref(text) to sextant_tenant_reader;

create or replace function sextant.get_knowledge(table_name text default null)
returns setof sextant.table_knowledge
language sql stable
as $$
  with target as (
    select case when get_knowledge.table_name is null then null else sextant_exec.table_ref(get_knowledge.table_name) end as ref
  )
  select r.table_ref,
         (select to_jsonb(kn) - 'search' - 'tenant_slug' from sextant.knowledge_notes as kn where kn.table_ref = r.table_ref),
         (select coalesce(jsonb_agg(jsonb_build_object('id', l.id, 'learning', l.learning, 'confidence', l.confidence,
                   'status', l.status, 'recorded_by', l.recorded_by, 'created_at', l.created_at) order by l.status = 'confirmed' desc, l.confidence desc), '[]')
            from sextant.learnings as l where l.table_ref is not distinct from r.table_ref and l.status <> 'rejected'),
         (select coalesce(jsonb_agg(jsonb_build_object('id', e.id, 'title', e.title, 'tags', e.tags) order by e.id), '[]')
            from sextant.knowledge_entries as e
           where r.table_ref is not null and (r.table_ref = any(e.tags) or e.body like '%' || r.table_ref || '%'))
  from (
    select t.ref as table_ref from target as t where t.ref is not null
    union
    select kn.table_ref from sextant.knowledge_notes as kn, target as t where t.ref is null
    union
    select l.table_ref from sextant.learnings as l, target as t where t.ref is null and l.status <> 'rejected'
  ) as r
  order by r.table_ref nulls first;
$$;
comment on function sextant.get_knowledge(text) is
  E'What your team wrote down about a table (note, learnings, related entries), or about every table when none is named.';
grant execute on function sextant.get_knowledge(text) to sextant_tenant_reader;

create or replace function sextant.search_knowledge(query text, max_results integer default 10)
returns setof sextant.knowledge_hit
language sql stable
as $$
  with q as (
    select case when t.terms is not null then to_tsquery('english', t.terms) end as ts
    from (select nullif(array_to_string(tsvector_to_array(to_tsvector('english', replace(sextant_exec.search_question(search_knowledge.query), '_', ' '))), ' | '), '') as terms) as t
  )
  select * from (
    select 'note'::text, kn.id, kn.table_ref, kn.table_ref, left(coalesce(kn.description, kn.use_cases, kn.data_quality_notes, ''), 300),
           ts_rank_cd(kn.search, q.ts)::float8
    from sextant.knowledge_notes as kn, q where kn.search @@ q.ts
    union all
    select 'entry', e.id, null, e.title, left(e.body, 300), ts_rank_cd(e.search, q.ts)::float8
    from sextant.knowledge_entries as e, q where e.search @@ q.ts
    union all
    select 'learning', l.id, l.table_ref, left(l.learning, 80), left(l.learning, 300),
           (ts_rank_cd(l.search, q.ts) * (0.5 + l.confidence / 2) * case l.status when 'confirmed' then 1.5 else 1 end)::float8
    from sextant.learnings as l, q where l.search @@ q.ts and l.status <> 'rejected'
  ) as hits
  order by 6 desc, 1, 2
  limit least(greatest(coalesce(search_knowledge.max_results, 10), 1), 100);
$$;
comment on function sextant.search_knowledge(text, integer) is
  E'Search your team''s notes, entries and learnings in plain English.';
grant execute on function sextant.search_knowledge(text, integer) to sextant_tenant_reader;

create or replace function sextant.save_learning(learning text, table_name text default null, confidence numeric default 0.5)
returns sextant.learnings
language plpgsql volatile
as $$
declare
  v_row sextant.learnings;
begin
  perform sextant.require_level('analyst', 'recording learnings');
  if save_learning.confidence is null or save_learning.confidence not between 0 and 1 then
    raise exception 'confidence must be between 0 and 1, got %', save_learning.confidence using errcode = 'SX400';
  end if;
  insert into sextant.learnings (table_ref, learning, confidence)
  values (case when save_learning.table_name is null then null else sextant_exec.table_ref(save_learning.table_name) end,
          save_learning.learning, save_learning.confidence)
  returning * into v_row;
  return v_row;
end
$$;
comment on function sextant.save_learning(text, text, numeric) is
  E'Records something you learned (a correction, a caveat, a join that works), optionally about one table, with your confidence (0 to 1). Analysts and admins.';
grant execute on function sextant.save_learning(text, text, numeric) to sextant_tenant_reader;

create or replace function sextant.review_learning(learning_id bigint, status text)
returns sextant.learnings
language plpgsql volatile
as $$
declare
  v_row sextant.learnings;
begin
  perform sextant.require_level('admin', 'reviewing learnings');
  if review_learning.status not in ('confirmed', 'rejected', 'proposed') then
    raise exception 'status must be confirmed, rejected or proposed' using errcode = 'SX400';
  end if;
  update sextant.learnings as l
  set status = review_learning.status, reviewed_at = now(), reviewed_by = sextant.current_person()
  where l.id = learning_id
  returning * into v_row;
  if v_row.id is null then
    raise exception 'no learning %', learning_id using errcode = 'SX404';
  end if;
  return v_row;
end
$$;
comment on function sextant.review_learning(bigint, text) is E'Confirms or rejects a learning (admins).';
grant execute on function sextant.review_learning(bigint, text) to sextant_tenant_reader;

reset role;
