-- Area: catalog, part 2 of 2 (part 1: sql/catalog.sql, applied before it). Tools:
-- describe_table, list_functions, get_metadata (MCP), the same as GraphQL queries, and the same
-- functions from psql. The invariants of part 1 hold here too: pg_catalog read directly and
-- filtered by the current role's privileges; identity from the current role only.

set role sextant_owner;

-- Finds a readable table by name (optionally "schema.table"); SX404 when none, SX400 when the
-- name is ambiguous across the tenant's schemas.
create or replace function sextant_exec.resolve_table(table_name text, schema_name text)
returns oid
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_schema text := schema_name;
  v_table text := table_name;
  v_matches oid[];
begin
  if v_table is null or btrim(v_table) = '' then
    raise exception 'table name is empty' using errcode = 'SX400';
  end if;
  if v_schema is null and v_table ~ '^[^."]+\.[^."]+$' then
    v_schema := split_part(v_table, '.', 1);
    v_table := split_part(v_table, '.', 2);
  end if;
  select array_agg(c.oid order by n.nspname) into v_matches
  from pg_catalog.pg_class as c
  join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
  where c.relname = v_table
    and (v_schema is null or n.nspname = v_schema)
    and c.relkind in ('r', 'p', 'v', 'm', 'f')
    and not sextant_exec.is_internal_schema(n.nspname)
    and has_schema_privilege(n.oid, 'usage')
    and has_table_privilege(c.oid, 'select');
  if v_matches is null then
    raise exception 'table % does not exist or is not readable by your tenant',
      coalesce(v_schema || '.', '') || v_table
      using errcode = 'SX404', hint = 'Call list_tables to see the tables you can read.';
  end if;
  if cardinality(v_matches) > 1 then
    raise exception 'table name % is in several schemas: %', v_table,
      (select string_agg(n.nspname, ', ') from pg_catalog.pg_class as c
         join pg_catalog.pg_namespace as n on n.oid = c.relnamespace where c.oid = any(v_matches))
      using errcode = 'SX400', hint = 'Pass schema_name, or write the name as schema.table.';
  end if;
  return v_matches[1];
end
$$;
comment on function sextant_exec.resolve_table(text, text) is E'The oid of a readable table named by the caller.';
grant execute on function sextant_exec.resolve_table(text, text) to sextant_tenant_reader;

-- PL/pgSQL, not SQL: a SQL function plans its whole body again on every call (~15 ms for this
-- one with its dozen subqueries); PL/pgSQL keeps the plan for the session. Each part reads
-- pg_catalog through an index by the table's oid (foreign keys that point here through
-- pg_depend: pg_constraint has no index on confrelid).
create or replace function sextant.describe_table(table_name text, schema_name text default null)
returns sextant.table_description
language plpgsql stable
set search_path = pg_catalog, pg_temp
-- The main statement's generic plan from the first call: a session otherwise plans it five times
-- with the call's values first (~5 ms each), then keeps the generic plan anyway. Fresh sessions'
-- first five calls of film (PG 15, backend CPU): 97 -> 88 ms; later calls unchanged.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_oid oid := sextant_exec.resolve_table(describe_table.table_name, describe_table.schema_name);
  v_schema text;
  v_table text;
  v_kind "char";
  v_pk int2[];
  v_sensitive text[];
  v_src jsonb;  -- a source's table (a view here): what its remote catalog said (sql/sources.sql)
  v_every_column boolean := pg_catalog.has_table_privilege(v_oid, 'select');
  r sextant.table_description;
begin
  select n.nspname, c.relname, c.relkind into v_schema, v_table, v_kind
  from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
  where c.oid = v_oid;
  v_pk := (select con.conkey from pg_catalog.pg_constraint as con where con.conrelid = v_oid and con.contype = 'p');
  v_sensitive := sextant_exec.sensitive_columns(v_oid, v_schema, v_table);
  v_src := case when v_kind = 'v' then sextant_exec.source_table_facts(v_schema, v_table) end;
  select
    v_schema,
    v_table,
    case v_kind when 'r' then 'table' when 'p' then 'partitioned table' when 'v' then 'view'
                when 'm' then 'materialized view' when 'f' then 'foreign table' end,
    -- pg_description read here, not through obj_description()/col_description(): those are SQL
    -- functions, run (and obj_description planned) once per call, 40 times for 40 columns.
    (select ds.description from pg_catalog.pg_description as ds
      where ds.objoid = v_oid and ds.classoid = 'pg_catalog.pg_class'::regclass and ds.objsubid = 0),
    coalesce((v_src ->> 'estimated_rows')::bigint,
             (select case when c.reltuples >= 0 then c.reltuples::bigint end from pg_catalog.pg_class as c where c.oid = v_oid)),
    case when v_kind in ('r', 'm') then pg_catalog.pg_total_relation_size(v_oid) end,
    (select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
              'name', a.attname,
              'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
              'nullable', not a.attnotnull,
              'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
              'description', ds.description,
              'primary_key', case when a.attnum = any(v_pk) or coalesce(v_src -> 'primary_key' ? a.attname, false) then true end,
              'sensitive', case when a.attname::text = any(v_sensitive) then true end,
              -- (A source's table only: no subquery per column for the others.)
              'statistics', case when v_src is not null then
                (select st - 'column' from jsonb_array_elements(v_src -> 'column_stats') as st where st ->> 'column' = a.attname) end))
            order by a.attnum), '[]')
       from pg_catalog.pg_attribute as a
       left join pg_catalog.pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
       left join pg_catalog.pg_description as ds
         on ds.objoid = v_oid and ds.classoid = 'pg_catalog.pg_class'::regclass and ds.objsubid = a.attnum
      where a.attrelid = v_oid and a.attnum > 0 and not a.attisdropped
        -- Table-level SELECT covers every column; otherwise column by column.
        and (v_every_column or pg_catalog.has_column_privilege(v_oid, a.attnum, 'select'))),
    coalesce(nullif((select to_jsonb(array(select a.attname::text from unnest(v_pk) with ordinality as k(attnum, i)
                             join pg_catalog.pg_attribute as a on a.attrelid = v_oid and a.attnum = k.attnum order by k.i))), '[]'),
             v_src -> 'primary_key', '[]'),
    coalesce(v_src -> 'foreign_keys', (select coalesce(jsonb_agg(jsonb_build_object(
              'name', con.conname,
              'columns', (select jsonb_agg(a.attname order by k.i) from unnest(con.conkey) with ordinality as k(attnum, i)
                            join pg_catalog.pg_attribute as a on a.attrelid = con.conrelid and a.attnum = k.attnum),
              'references', fn.nspname || '.' || fc.relname,
              'referenced_columns', (select jsonb_agg(a.attname order by k.i) from unnest(con.confkey) with ordinality as k(attnum, i)
                            join pg_catalog.pg_attribute as a on a.attrelid = con.confrelid and a.attnum = k.attnum))
            order by con.conname), '[]')
       from pg_catalog.pg_constraint as con
       join pg_catalog.pg_class as fc on fc.oid = con.confrelid
       join pg_catalog.pg_namespace as fn on fn.oid = fc.relnamespace
      where con.conrelid = v_oid and con.contype = 'f')),
    (select coalesce(jsonb_agg(jsonb_build_object(
              'name', con.conname,
              'table', rn.nspname || '.' || rc.relname,
              'columns', (select jsonb_agg(a.attname order by k.i) from unnest(con.conkey) with ordinality as k(attnum, i)
                            join pg_catalog.pg_attribute as a on a.attrelid = con.conrelid and a.attnum = k.attnum),
              'referenced_columns', (select jsonb_agg(a.attname order by k.i) from unnest(con.confkey) with ordinality as k(attnum, i)
                            join pg_catalog.pg_attribute as a on a.attrelid = con.confrelid and a.attnum = k.attnum))
            order by rn.nspname, rc.relname), '[]')
       from pg_catalog.pg_constraint as con
       join pg_catalog.pg_class as rc on rc.oid = con.conrelid
       join pg_catalog.pg_namespace as rn on rn.oid = rc.relnamespace
      where con.oid in (select dep.objid from pg_catalog.pg_depend as dep
                         where dep.refclassid = 'pg_catalog.pg_class'::regclass and dep.refobjid = v_oid
                           and dep.classid = 'pg_catalog.pg_constraint'::regclass)
        and con.confrelid = v_oid and con.contype = 'f'
        and pg_catalog.has_table_privilege(rc.oid, 'select')),
    coalesce(v_src -> 'indexes', (select coalesce(jsonb_agg(jsonb_build_object(
              'name', ic.relname, 'unique', i.indisunique, 'primary', i.indisprimary,
              'definition', pg_catalog.pg_get_indexdef(i.indexrelid)) order by ic.relname), '[]')
       from pg_catalog.pg_index as i
       join pg_catalog.pg_class as ic on ic.oid = i.indexrelid
      where i.indrelid = v_oid)),
    (select coalesce(jsonb_agg(jsonb_build_object(
              'name', con.conname, 'type', case con.contype when 'c' then 'check' when 'u' then 'unique' when 'x' then 'exclusion' end,
              'definition', pg_catalog.pg_get_constraintdef(con.oid)) order by con.conname), '[]')
       from pg_catalog.pg_constraint as con
      where con.conrelid = v_oid and con.contype in ('c', 'u', 'x')),
    -- The dbt node that builds this relation, if the tenant loaded its project.
    (select jsonb_strip_nulls(jsonb_build_object('project', p.project_name, 'unique_id', n.unique_id,
              'resource_type', n.resource_type, 'materialization', n.materialization, 'description', n.description,
              'columns', n.columns, 'last_run_status', n.last_run_status, 'last_run_at', n.last_run_at,
              -- Where the docs and the table disagree.
              'drift', jsonb_strip_nulls(jsonb_build_object(
                'documented_but_missing', (select jsonb_agg(c ->> 'name') from jsonb_array_elements(n.columns) as c
                   where not exists (select from pg_catalog.pg_attribute as a where a.attrelid = v_oid and a.attnum > 0
                                       and not a.attisdropped and lower(a.attname) = lower(c ->> 'name'))),
                'present_but_undocumented', (select jsonb_agg(a.attname order by a.attnum) from pg_catalog.pg_attribute as a
                   where a.attrelid = v_oid and a.attnum > 0 and not a.attisdropped
                     and not exists (select from jsonb_array_elements(n.columns) as c where lower(c ->> 'name') = lower(a.attname))),
                'type_differences', (select jsonb_agg(jsonb_build_object('column', a.attname, 'documented', c ->> 'data_type',
                                                                         'actual', pg_catalog.format_type(a.atttypid, a.atttypmod)))
                   from pg_catalog.pg_attribute as a
                   join jsonb_array_elements(n.columns) as c on lower(c ->> 'name') = lower(a.attname)
                   where a.attrelid = v_oid and a.attnum > 0 and not a.attisdropped and c ->> 'data_type' is not null
                     and lower(c ->> 'data_type') <> lower(pg_catalog.format_type(a.atttypid, a.atttypmod))
                     and lower(c ->> 'data_type') <> lower(pg_catalog.format_type(a.atttypid, null)))))))
       from sextant.dbt_nodes as n
       join sextant.dbt_projects as p on p.id = n.project_id
      where lower(n.schema_name) = lower(v_schema) and lower(n.alias) = lower(v_table)
        and n.resource_type in ('model', 'seed', 'snapshot', 'source')
      order by n.resource_type = 'model' desc
      limit 1),
    -- What the team wrote down about it (sql/knowledge.sql has the tools).
    (select jsonb_strip_nulls(jsonb_build_object(
              'note', (select to_jsonb(kn) - 'search' - 'tenant_slug' - 'id' from sextant.knowledge_notes as kn
                        where kn.table_ref = v_schema || '.' || v_table),
              'learnings', (select jsonb_agg(jsonb_build_object('learning', l.learning, 'confidence', l.confidence, 'status', l.status)
                                             order by l.status = 'confirmed' desc, l.confidence desc)
                              from sextant.learnings as l
                             where l.table_ref = v_schema || '.' || v_table and l.status <> 'rejected')))),
    -- When a pipeline last loaded it (sql/materialize_swap.sql, finish_run).
    (select jsonb_build_object('pipeline', p.name, 'run_id', m.run_id, 'loaded_at', m.loaded_at, 'kind', m.kind,
                               'row_count', m.row_count, 'rows_changed', m.rows_changed)
       from sextant.materialized_tables as m
       left join sextant.pipelines as p on p.id = m.pipeline_id
      where m.schema_name = v_schema and m.table_name = v_table)
  into r;
  return r;
end
$$;
comment on function sextant.describe_table(text, text) is
  E'Columns (type, nullable, default, comment, sensitive), primary key, foreign keys both ways, indexes, '
  'constraints, row estimate and size of one table or view ("table" or "schema.table").';
grant execute on function sextant.describe_table(text, text) to sextant_tenant_reader;

create or replace view sextant.functions with (security_invoker = true) as
  select n.nspname::text as schema_name,
         p.proname::text as function_name,
         pg_get_function_arguments(p.oid) as arguments,
         pg_get_function_result(p.oid) as result_type,
         case p.prokind when 'f' then 'function' when 'a' then 'aggregate' when 'w' then 'window' when 'p' then 'procedure' end as kind,
         case p.provolatile when 'i' then 'immutable' when 's' then 'stable' else 'volatile' end as volatility,
         obj_description(p.oid, 'pg_proc') as description
  from pg_catalog.pg_proc as p
  join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
  where not sextant_exec.is_internal_schema(n.nspname)
    and has_schema_privilege(n.oid, 'usage')
    and has_function_privilege(p.oid, 'execute');
comment on view sextant.functions is E'@behavior -list -connection\nFunctions the current role can call outside PostgreSQL''s own.';
grant select on sextant.functions to sextant_tenant_reader;

create or replace function sextant.list_functions(schema_name text default null)
returns setof sextant.functions
language sql stable
as $$
  select f.* from sextant.functions as f
  where (list_functions.schema_name is null and f.schema_name <> 'public') or f.schema_name = list_functions.schema_name
  order by f.schema_name, f.function_name, f.arguments;
$$;
comment on function sextant.list_functions(text) is
  E'Functions you can call in your schemas (or in one schema), with signatures and comments.';
grant execute on function sextant.list_functions(text) to sextant_tenant_reader;

create or replace function sextant.get_metadata(schema_name text default null)
returns sextant.data_dictionary
language sql stable
as $$
  -- Each step runs once for the whole schema (materialized), then joins by hash: the cost
  -- grows with the number of columns, not tables x columns.
  with tabs as materialized (
    select c.oid, n.nspname::text as schema_name, c.relname::text as table_name, c.relkind, c.reltuples
    from pg_catalog.pg_class as c
    join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'v', 'm', 'f')
      and not c.relispartition
      and not sextant_exec.is_internal_schema(n.nspname)
      and (get_metadata.schema_name is null or n.nspname = get_metadata.schema_name)
      and (get_metadata.schema_name is not null or n.nspname <> 'public')
      and has_schema_privilege(n.oid, 'usage')
      and has_table_privilege(c.oid, 'select')
  ),
  -- The tenant's sensitive-column rule (sql/catalog.sql): the dbt half as one set for every
  -- table, instead of a call per column.
  dbt_flagged as materialized (
    select f.schema_name, f.table_name, f.name from sextant_exec.sensitive_by_dbt() as f
  ),
  -- A source's tables are views here: their row estimate, keys and foreign keys come from the
  -- remote catalog at its last refresh (sql/sources.sql; RLS shows the tenant its own).
  src as materialized (
    select t.oid, t.schema_name, t.table_name, st.source_name, st.estimated_rows, st.primary_key, st.foreign_keys
    from tabs as t
    join sextant.source_tables as st on st.local_schema = t.schema_name and st.table_name = t.table_name
    where t.relkind = 'v'
  ),
  stats as materialized (
    select s.schemaname::text as schema_name, s.tablename::text as table_name, s.attname::text as name,
           s.most_common_vals::text as common_values
    from pg_catalog.pg_stats as s
    where s.schemaname in (select distinct tabs.schema_name from tabs)
  ),
  pk as materialized (
    select con.conrelid, k.attnum
    from pg_catalog.pg_constraint as con, unnest(con.conkey) as k(attnum)
    where con.contype = 'p' and con.conrelid in (select oid from tabs)
  ),
  cols as materialized (
    select a.attrelid, a.attnum, t.schema_name, t.table_name, a.attname::text as name,
           format_type(a.atttypid, a.atttypmod) as type, a.attnotnull,
           col_description(a.attrelid, a.attnum) as description,
           exists (select from dbt_flagged as f where f.schema_name = lower(t.schema_name)
                     and f.table_name = lower(t.table_name) and f.name = lower(a.attname)) as dbt_sensitive,
           pk.attnum is not null or coalesce(a.attname::text = any (sr.primary_key), false) as is_pk
    from tabs as t
    join pg_catalog.pg_attribute as a on a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
    left join pk on pk.conrelid = a.attrelid and pk.attnum = a.attnum
    left join src as sr on sr.oid = t.oid
    where has_column_privilege(t.oid, a.attnum, 'select')
  ),
  -- The pattern half, matched against each distinct column name (catalogs repeat names: the
  -- 54,000 columns of the bench's 2,000 tables have 373), not each column.
  flagged as materialized (
    select unnest(sextant_exec.sensitive_by_pattern(array(select distinct c.name from cols as c))) as name
  ),
  colagg as (
    select c.attrelid,
           jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
             'name', c.name, 'type', c.type,
             'not_null', case when c.attnotnull then true end,
             'pk', case when c.is_pk then true end,
             'description', c.description,
             'sensitive', case when c.sensitive then true end,
             -- A few frequent values from the planner's statistics (no table scan).
             'samples', case when not c.sensitive and s.common_values is not null
                        then to_jsonb((s.common_values::text[])[1:5]) end))
             order by c.attnum) as columns
    from (select c.*, c.dbt_sensitive or c.name in (select f.name from flagged as f) as sensitive from cols as c) as c
    left join stats as s on s.schema_name = c.schema_name and s.table_name = c.table_name and s.name = c.name
    group by c.attrelid
  ),
  -- What the team wrote down (sql/knowledge.sql), briefly: the note, data quality, join hints,
  -- and the three most trusted learnings that were not rejected.
  knowledge as (
    select t.oid,
           jsonb_strip_nulls(jsonb_build_object(
             'note', left(kn.description, 300),
             'data_quality', left(kn.data_quality_notes, 300),
             'join_hints', nullif(kn.join_hints, '[]'::jsonb),
             'learnings', (select jsonb_agg(left(l.learning, 300) order by l.status = 'confirmed' desc, l.confidence desc)
                             from (select * from sextant.learnings as l
                                    where l.table_ref = t.schema_name || '.' || t.table_name and l.status <> 'rejected'
                                    order by l.status = 'confirmed' desc, l.confidence desc limit 3) as l))) as k
    from tabs as t
    left join sextant.knowledge_notes as kn on kn.table_ref = t.schema_name || '.' || t.table_name
  )
  select
    get_metadata.schema_name,
    (select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
              'table', t.schema_name || '.' || t.table_name,
              'kind', case t.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table' end,
              'description', obj_description(t.oid, 'pg_class'),
              'rows', case when t.reltuples >= 0 then t.reltuples::bigint else sr.estimated_rows end,
              'source', sr.source_name,
              'loaded_at', mt.loaded_at,
              'knowledge', nullif(k.k, '{}'::jsonb),
              'columns', ca.columns))
            order by t.schema_name, t.table_name), '[]')
       from tabs as t left join colagg as ca on ca.attrelid = t.oid
       left join knowledge as k on k.oid = t.oid
       left join src as sr on sr.oid = t.oid
       left join sextant.materialized_tables as mt on mt.schema_name = t.schema_name and mt.table_name = t.table_name),
    (select coalesce(jsonb_agg(j.path order by j.schema_name, j.table_name, j.name), '[]')
       from (select jsonb_build_object(
                      'from', ft.schema_name || '.' || ft.table_name || '(' ||
                              (select string_agg(a.attname, ', ' order by k.i) from unnest(con.conkey) with ordinality as k(attnum, i)
                                 join pg_catalog.pg_attribute as a on a.attrelid = con.conrelid and a.attnum = k.attnum) || ')',
                      'to', tn.nspname || '.' || tc.relname || '(' ||
                              (select string_agg(a.attname, ', ' order by k.i) from unnest(con.confkey) with ordinality as k(attnum, i)
                                 join pg_catalog.pg_attribute as a on a.attrelid = con.confrelid and a.attnum = k.attnum) || ')') as path,
                    ft.schema_name, ft.table_name, con.conname::text as name
               from pg_catalog.pg_constraint as con
               join tabs as ft on ft.oid = con.conrelid
               join pg_catalog.pg_class as tc on tc.oid = con.confrelid
               join pg_catalog.pg_namespace as tn on tn.oid = tc.relnamespace
              where con.contype = 'f'
             union all
             -- A source's remote foreign keys; one to a table outside the source says "(remote)".
             select jsonb_build_object(
                      'from', sr.schema_name || '.' || sr.table_name || '(' || array_to_string(array(select jsonb_array_elements_text(fk -> 'columns')), ', ') || ')',
                      'to', regexp_replace(fk ->> 'references', ' \(remote\)$', '') || '('
                            || array_to_string(array(select jsonb_array_elements_text(fk -> 'referenced_columns')), ', ') || ')'
                            || case when fk ->> 'references' like '% (remote)' then ' (remote)' else '' end),
                    sr.schema_name, sr.table_name, fk ->> 'name'
               from src as sr, jsonb_array_elements(sr.foreign_keys) as fk) as j),
    (select coalesce(jsonb_agg(jsonb_build_object('type', tn.nspname || '.' || ty.typname,
                                                  'values', (select jsonb_agg(e.enumlabel order by e.enumsortorder)
                                                               from pg_catalog.pg_enum as e where e.enumtypid = ty.oid))), '[]')
       from pg_catalog.pg_type as ty
       join pg_catalog.pg_namespace as tn on tn.oid = ty.typnamespace
      where ty.typtype = 'e'
        and not sextant_exec.is_internal_schema(tn.nspname)
        and (get_metadata.schema_name is null or tn.nspname = get_metadata.schema_name)
        and has_schema_privilege(tn.oid, 'usage'));
$$;
comment on function sextant.get_metadata(text) is
  E'A compact data dictionary for a prompt: tables, columns, keys, join paths from foreign keys, enums, '
  'and a few frequent values per column (never for sensitive columns).';
grant execute on function sextant.get_metadata(text) to sextant_tenant_reader;

reset role;
