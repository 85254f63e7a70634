-- Area: catalog. Tools: whoami, list_schemas (MCP), Query.whoami / Query.listSchemas
-- (GraphQL), and the same functions from psql.
-- Invariants:
--   * everything reads pg_catalog directly and filters by the current role's privileges, so a
--     tenant sees only what it could read anyway;
--   * identity comes from the current role; jwt.claims.* is shown for audit, never trusted.

set role sextant_owner;

-- The current tenant and access level (first written in migration 000001 as SQL functions):
-- every RLS policy and tool calls them, several times per call. A SQL function that is not
-- inlined plans its body again in every statement (~0.4 ms here, most of a point lookup's
-- overhead); PL/pgSQL keeps the plan for the session. Same rule: role membership only.
create or replace function sextant.current_tenant()
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return (select case when count(*) = 1 then min(substr(pg_catalog.pg_get_userbyid(m.member), 11)) end
          from pg_catalog.pg_auth_members as m
          where m.roleid = 'sextant_tenant_reader'::regrole
            and pg_catalog.pg_get_userbyid(m.member) like 'sextant\_t\_%'
            and pg_catalog.pg_has_role(current_user, m.member, 'USAGE')
            and not exists (select from pg_catalog.pg_roles as s where s.rolname = current_user and s.rolsuper));
end
$$;

create or replace function sextant.current_access_level()
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  t text := sextant.current_tenant();
begin
  return case
    when t is null then null
    when pg_catalog.to_regrole('sextant_t_' || t || '__admin') is not null
      and pg_catalog.pg_has_role(current_user, ('sextant_t_' || t || '__admin')::regrole, 'USAGE') then 'admin'
    when pg_catalog.to_regrole('sextant_t_' || t || '__analyst') is not null
      and pg_catalog.pg_has_role(current_user, ('sextant_t_' || t || '__analyst')::regrole, 'USAGE') then 'analyst'
    else 'viewer'
  end;
end
$$;

create or replace view sextant.identities with (security_invoker = true) as
  select sextant.current_tenant() as tenant,
         sextant.current_access_level() as access_level,
         current_user::text as database_role,
         sextant.current_person() as principal,
         nullif(current_setting('jwt.claims.auth', true), '') as auth_method,
         current_database()::text as database_name,
         current_setting('server_version') as server_version,
         current_setting('transaction_read_only') = 'on' as read_only;
comment on view sextant.identities is E'@behavior -list -connection\nThe current identity, one row (backs whoami).';
comment on column sextant.identities.tenant is E'Tenant slug, derived from the database role.';
comment on column sextant.identities.access_level is E'viewer, analyst or admin, derived from the database role.';
comment on column sextant.identities.principal is E'Who the server authenticated (person or agent), for audit; not used for access.';
grant select on sextant.identities to sextant_tenant_reader;

create or replace function sextant.whoami()
returns sextant.identities
language sql stable
as $$
  select * from sextant.identities;
$$;
comment on function sextant.whoami() is
  E'Who you are to Sextant: tenant, access level, database role, principal and database.';
grant execute on function sextant.whoami() to sextant_tenant_reader;

-- Schemas that are never a tenant's data.
create or replace function sextant_exec.is_internal_schema(schema_name text)
returns boolean
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select schema_name in ('sextant', 'sextant_private', 'sextant_exec', 'information_schema', 'pg_catalog', 'pg_toast')
      or schema_name like 'pg\_%' or schema_name like 'graphile\_%' or schema_name like 'sextant\_stage\_%';
$$;
comment on function sextant_exec.is_internal_schema(text) is E'Sextant''s and PostgreSQL''s own schemas.';
grant execute on function sextant_exec.is_internal_schema(text) to sextant_tenant_reader;

create or replace view sextant.schemas with (security_invoker = true) as
  select n.nspname::text as schema_name,
         ts.tenant_slug as tenant,
         coalesce(ts.provisioned, false) as provisioned,
         ts.expires_at,
         obj_description(n.oid, 'pg_namespace') as description,
         coalesce(counts.n, 0)::integer as table_count
  from pg_catalog.pg_namespace as n
  left join sextant.tenant_schemas as ts on ts.schema_name = n.nspname
  -- One pass over pg_class for all schemas (pg_class has no index on relnamespace alone).
  left join (select c.relnamespace, count(*) as n
               from pg_catalog.pg_class as c
              where c.relkind in ('r', 'p', 'v', 'm', 'f')
                and not c.relispartition
                and has_table_privilege(c.oid, 'select')
              group by c.relnamespace) as counts on counts.relnamespace = n.oid
  where has_schema_privilege(n.oid, 'usage')
    and not sextant_exec.is_internal_schema(n.nspname)
    -- public is usable by everyone by default: list it only when it is mapped to the tenant.
    and (n.nspname <> 'public' or ts.schema_name is not null);
comment on view sextant.schemas is E'@behavior -list -connection\nSchemas the current role can use, with their tenant.';
grant select on sextant.schemas to sextant_tenant_reader;

create or replace function sextant.list_schemas()
returns setof sextant.schemas
language sql stable
as $$
  select * from sextant.schemas order by schema_name;
$$;
comment on function sextant.list_schemas() is
  E'Schemas your tenant can read, with the number of readable tables and views in each.';
grant execute on function sextant.list_schemas() to sextant_tenant_reader;

reset role;

-- ---------------------------------------------------------------------------------------------
-- Tables, columns, functions, data dictionary.
set role sextant_owner;

-- Whether a column is sensitive for the current tenant: its name matches one of the tenant's
-- patterns, or the tenant's dbt project marks it (meta key or tag in sensitive_meta_keys).
drop function if exists sextant_exec.is_sensitive_column(text);
create or replace function sextant_exec.is_sensitive_column(schema_name text, table_name text, column_name text)
returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select exists (
    select from sextant.tenants as t, unnest(t.sensitive_column_patterns) as p
    where t.slug = sextant.current_tenant() and is_sensitive_column.column_name ~* p)
  or exists (
    select from sextant.dbt_nodes as n
    cross join jsonb_array_elements(n.columns) as c
    cross join sextant.tenants as t
    where t.slug = sextant.current_tenant()
      and lower(n.schema_name) = lower(is_sensitive_column.schema_name)
      and lower(n.alias) = lower(is_sensitive_column.table_name)
      and lower(c ->> 'name') = lower(is_sensitive_column.column_name)
      and exists (select from unnest(t.sensitive_meta_keys) as k
                  where lower(c -> 'meta' ->> k) in ('true', 'yes', '1') or coalesce(c -> 'tags', '[]') ? k));
$$;
comment on function sextant_exec.is_sensitive_column(text, text, text) is
  E'True when a column is sensitive for the current tenant (name pattern, or dbt meta/tag).';
grant execute on function sextant_exec.is_sensitive_column(text, text, text) to sextant_tenant_reader;

-- The same rule for all the columns of one table at once: describe_table called the function
-- above once per column (each call a separate plan, ~1 ms: most of its time).
create or replace function sextant_exec.sensitive_columns(rel oid, schema_name text, table_name text)
returns text[]
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- PL/pgSQL for its cached plan (a SQL function is planned again on every call).
  return (
  with t as (
      select coalesce('(' || array_to_string(t.sensitive_column_patterns, ')|(') || ')', '$^') as pattern, t.sensitive_meta_keys as keys
      from sextant.tenants as t where t.slug = sextant.current_tenant()
    ),
    dbt as (
      select lower(c ->> 'name') as name
      from sextant.dbt_nodes as n cross join jsonb_array_elements(n.columns) as c, t
      where lower(n.schema_name) = lower(sensitive_columns.schema_name) and lower(n.alias) = lower(sensitive_columns.table_name)
        and exists (select from unnest(t.keys) as k where lower(c -> 'meta' ->> k) in ('true', 'yes', '1') or coalesce(c -> 'tags', '[]') ? k)
    )
    select coalesce(array_agg(a.attname::text), '{}')
    from pg_catalog.pg_attribute as a, t
    where a.attrelid = sensitive_columns.rel and a.attnum > 0 and not a.attisdropped
      and (a.attname ~* t.pattern or lower(a.attname) in (select name from dbt)));
end
$$;
comment on function sextant_exec.sensitive_columns(oid, text, text) is
  E'The columns of one table that are sensitive for the current tenant (as is_sensitive_column decides for one).';
grant execute on function sextant_exec.sensitive_columns(oid, text, text) to sextant_tenant_reader;

create or replace view sextant.databases with (security_invoker = true) as
  select current_database()::text as database_name,
         'postgresql'::text as kind,
         current_setting('server_version') as server_version,
         pg_database_size(current_database()) as size_bytes,
         shobj_description((select d.oid from pg_catalog.pg_database as d where d.datname = current_database()), 'pg_database') as description,
         'ok'::text as status,
         null::timestamptz as last_refreshed_at,
         null::integer as table_count,
         null::text[] as schemas
  union all
  -- The tenant's sources (sql/sources.sql; RLS keeps other tenants' rows out), their tables in
  -- <name>_<remote schema>. Neither host nor user: the operator's business.
  select src.name, 'postgresql source (postgres_fdw)', src.server_version, null,
         coalesce(src.last_error, format('%s.%s on another PostgreSQL server', src.dbname, array_to_string(src.remote_schemas, ', '))),
         src.status, src.last_refreshed_at, src.table_count,
         array(select src.name || '_' || r from unnest(src.remote_schemas) as r)
  from sextant.sources as src
  union all
  -- Foreign servers made by hand that the role was granted.
  select s.srvname::text, 'foreign server (' || w.fdwname || ')', s.srvversion, null, obj_description(s.oid, 'pg_foreign_server'),
         null, null, null, null
  from pg_catalog.pg_foreign_server as s
  join pg_catalog.pg_foreign_data_wrapper as w on w.oid = s.srvfdw
  where has_server_privilege(s.oid, 'usage')
    and not exists (select from sextant.sources as src where src.server_name = s.srvname);
comment on view sextant.databases is E'@behavior -list -connection\nData sources the current role can read: this database, the tenant''s sources (status, last refresh, table count, local schemas) and foreign servers granted by hand.';
grant select on sextant.databases to sextant_tenant_reader;

create or replace function sextant.list_databases()
returns setof sextant.databases
language sql stable
as $$
  select * from sextant.databases;
$$;
comment on function sextant.list_databases() is
  E'The data sources your tenant can read: this database, its other PostgreSQL sources (with server version, status, last refresh and table count), and foreign servers granted to it.';
grant execute on function sextant.list_databases() to sextant_tenant_reader;

create or replace view sextant.tables with (security_invoker = true) as
  select n.nspname::text as schema_name,
         c.relname::text as table_name,
         case c.relkind
           when 'r' then 'table' when 'p' then 'partitioned table' when 'v' then 'view'
           when 'm' then 'materialized view' when 'f' then 'foreign table'
         end as kind,
         obj_description(c.oid, 'pg_class') as description,
         case when c.reltuples >= 0 then c.reltuples::bigint end as estimated_rows,
         -- From the statistics (relpages), like estimated_rows: no file system calls per table.
         case when c.relkind in ('r', 'm') and c.relpages > 0
              then c.relpages::bigint * current_setting('block_size')::bigint end as estimated_bytes,
         (select count(*) from pg_catalog.pg_attribute as a
           where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)::integer as column_count,
         -- Freshness of tables a pipeline produced (sql/materialize.sql).
         mt.loaded_at as last_loaded_at,
         mt.run_id as loaded_by_run,
         mt.rows_changed
  from pg_catalog.pg_class as c
  join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
  left join sextant.materialized_tables as mt on mt.schema_name = n.nspname and mt.table_name = c.relname
  where c.relkind in ('r', 'p', 'v', 'm', 'f')
    and not c.relispartition
    and not sextant_exec.is_internal_schema(n.nspname)
    and has_schema_privilege(n.oid, 'usage')
    -- Tested after the join (it names n too): for one schema, on that schema's tables only, not
    -- on every table of the database (pg_class has no index on relnamespace).
    and case when c.relnamespace = n.oid then has_table_privilege(c.oid, 'select') end;
comment on view sextant.tables is E'@behavior -list -connection\nTables, views, materialized views and foreign tables the current role can read.';
grant select on sextant.tables to sextant_tenant_reader;

create or replace function sextant.list_tables(schema_name text default null, max_results integer default 100, page_offset integer default 0)
returns setof sextant.tables
language plpgsql stable
as $$
begin
  if max_results is null or max_results not between 1 and 1000 then
    raise exception 'max_results must be between 1 and 1000, got %', max_results using errcode = 'SX400';
  end if;
  if page_offset is null or page_offset < 0 then
    raise exception 'page_offset must not be negative, got %', page_offset using errcode = 'SX400';
  end if;
  if list_tables.schema_name is not null and not exists (
       select from sextant.schemas as s where s.schema_name = list_tables.schema_name) then
    raise exception 'schema % does not exist or is not readable by your tenant', list_tables.schema_name
      using errcode = 'SX404', hint = 'Call list_schemas to see the schemas you can read.';
  end if;
  -- Two statements, not one with `schema_name is null or ...`: that OR keeps the schema's name
  -- from reaching pg_namespace, and every readable table of every schema was read first.
  if list_tables.schema_name is null then
    return query
      select t.* from sextant.tables as t
      order by t.schema_name, t.table_name
      limit max_results offset page_offset;
  else
    return query
      select t.* from sextant.tables as t
      where t.schema_name = list_tables.schema_name
      order by t.table_name
      limit max_results offset page_offset;
  end if;
end
$$;
comment on function sextant.list_tables(text, integer, integer) is
  E'Tables and views your tenant can read (one schema, or all), with comments, row estimates and size; '
  'paged by max_results (at most 1000) and page_offset.';
grant execute on function sextant.list_tables(text, integer, integer) to sextant_tenant_reader;

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
as $$
declare
  v_oid oid := sextant_exec.resolve_table(describe_table.table_name, describe_table.schema_name);
  v_schema text;
  v_table text;
  v_kind "char";
  v_pk int2[];
  v_sensitive text[];
  r sextant.table_description;
begin
  select n.nspname, c.relname, c.relkind into v_schema, v_table, v_kind
  from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
  where c.oid = v_oid;
  v_pk := (select con.conkey from pg_catalog.pg_constraint as con where con.conrelid = v_oid and con.contype = 'p');
  v_sensitive := sextant_exec.sensitive_columns(v_oid, v_schema, v_table);
  select
    v_schema,
    v_table,
    case v_kind when 'r' then 'table' when 'p' then 'partitioned table' when 'v' then 'view'
                when 'm' then 'materialized view' when 'f' then 'foreign table' end,
    pg_catalog.obj_description(v_oid, 'pg_class'),
    (select case when c.reltuples >= 0 then c.reltuples::bigint end from pg_catalog.pg_class as c where c.oid = v_oid),
    case when v_kind in ('r', 'm') then pg_catalog.pg_total_relation_size(v_oid) end,
    (select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
              'name', a.attname,
              'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
              'nullable', not a.attnotnull,
              'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
              'description', pg_catalog.col_description(v_oid, a.attnum),
              'primary_key', case when a.attnum = any(v_pk) then true end,
              'sensitive', case when a.attname::text = any(v_sensitive) then true end))
            order by a.attnum), '[]')
       from pg_catalog.pg_attribute as a
       left join pg_catalog.pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid = v_oid and a.attnum > 0 and not a.attisdropped
        and pg_catalog.has_column_privilege(v_oid, a.attnum, 'select')),
    (select to_jsonb(array(select a.attname::text from unnest(v_pk) with ordinality as k(attnum, i)
                             join pg_catalog.pg_attribute as a on a.attrelid = v_oid and a.attnum = k.attnum order by k.i))),
    (select coalesce(jsonb_agg(jsonb_build_object(
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
      where con.conrelid = v_oid and con.contype = 'f'),
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
    (select coalesce(jsonb_agg(jsonb_build_object(
              'name', ic.relname, 'unique', i.indisunique, 'primary', i.indisprimary,
              'definition', pg_catalog.pg_get_indexdef(i.indexrelid)) order by ic.relname), '[]')
       from pg_catalog.pg_index as i
       join pg_catalog.pg_class as ic on ic.oid = i.indexrelid
      where i.indrelid = v_oid),
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
    -- When a pipeline last loaded it (sql/materialize.sql).
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
  sensitive as materialized (
    select coalesce('(' || array_to_string(t.sensitive_column_patterns, ')|(') || ')', '$^') as pattern
    from (select 1) as one
    left join sextant.tenants as t on t.slug = sextant.current_tenant()
  ),
  -- The dbt half of sextant_exec.is_sensitive_column, as one set instead of a call per column.
  dbt_flagged as materialized (
    select lower(n.schema_name) as schema_name, lower(n.alias) as table_name, lower(c ->> 'name') as name
    from sextant.dbt_nodes as n
    cross join jsonb_array_elements(n.columns) as c
    cross join sextant.tenants as t
    where t.slug = sextant.current_tenant()
      and exists (select from unnest(t.sensitive_meta_keys) as k
                  where lower(c -> 'meta' ->> k) in ('true', 'yes', '1') or coalesce(c -> 'tags', '[]') ? k)
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
           a.attname ~* (select pattern from sensitive)
             or exists (select from dbt_flagged as f where f.schema_name = lower(t.schema_name)
                          and f.table_name = lower(t.table_name) and f.name = lower(a.attname)) as sensitive,
           pk.attnum is not null as is_pk
    from tabs as t
    join pg_catalog.pg_attribute as a on a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
    left join pk on pk.conrelid = a.attrelid and pk.attnum = a.attnum
    where has_column_privilege(t.oid, a.attnum, 'select')
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
    from cols as c
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
              'rows', case when t.reltuples >= 0 then t.reltuples::bigint end,
              'loaded_at', mt.loaded_at,
              'knowledge', nullif(k.k, '{}'::jsonb),
              'columns', ca.columns))
            order by t.schema_name, t.table_name), '[]')
       from tabs as t left join colagg as ca on ca.attrelid = t.oid
       left join knowledge as k on k.oid = t.oid
       left join sextant.materialized_tables as mt on mt.schema_name = t.schema_name and mt.table_name = t.table_name),
    (select coalesce(jsonb_agg(jsonb_build_object(
              'from', ft.schema_name || '.' || ft.table_name || '(' ||
                      (select string_agg(a.attname, ', ' order by k.i) from unnest(con.conkey) with ordinality as k(attnum, i)
                         join pg_catalog.pg_attribute as a on a.attrelid = con.conrelid and a.attnum = k.attnum) || ')',
              'to', tn.nspname || '.' || tc.relname || '(' ||
                      (select string_agg(a.attname, ', ' order by k.i) from unnest(con.confkey) with ordinality as k(attnum, i)
                         join pg_catalog.pg_attribute as a on a.attrelid = con.confrelid and a.attnum = k.attnum) || ')')
            order by ft.schema_name, ft.table_name, con.conname), '[]')
       from pg_catalog.pg_constraint as con
       join tabs as ft on ft.oid = con.conrelid
       join pg_catalog.pg_class as tc on tc.oid = con.confrelid
       join pg_catalog.pg_namespace as tn on tn.oid = tc.relnamespace
      where con.contype = 'f'),
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
