-- Area: catalog, part 1 of 2 (part 2: sql/catalog_tables.sql). Tools: whoami, list_schemas,
-- list_databases, list_tables (MCP), the same as GraphQL queries (whoami, listSchemas, …), and
-- the same functions from psql.
-- Invariants:
--   * everything reads pg_catalog directly and filters by the current role's privileges, so a
--     tenant sees only what it could read anyway;
--   * identity comes from the current role; jwt.claims.* is shown for audit, never trusted.

set role sextant_owner;

-- The current tenant and access level (first written in migration 000001 as SQL functions):
-- every RLS policy and tool calls them, several times per call. A SQL function that is not
-- inlined plans its body again in every statement (~0.4 ms here, most of a point lookup's
-- overhead); PL/pgSQL keeps the plan for the session. Same rule: role membership only.
-- current_tenant: the slug of the one tenant role (sextant_t_<slug>, member of
-- sextant_tenant_reader) the current role has USAGE on (pg_has_role: its privileges through
-- inheritance); null for none, two or more, or a superuser. Testing every tenant role grows
-- with the number of tenants (~17 us a call at one, ~0.6 ms at 1,000), so past 64 tenant
-- roles it collects the roles current_user is a member of, directly or not (a handful for a
-- tenant role or an analyst login), and tests only the tenant roles among them (~50 us at
-- 1,000): every role it has USAGE on is among them (pg_database_owner, implicit for the
-- database owner, is a member of no role). Each tenant role counts once per pg_auth_members
-- row either way (test/currentTenant.test.ts compares both with the scan for every role).
-- The lateral subqueries (offset 0) keep each step on pg_auth_members' member index. A role
-- in more than 64 roles (sextant_owner, the authenticator: thousands at 1,000 tenants) gets
-- the scan too, cheaper for them than the walk.
create or replace function sextant.current_tenant()
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_many boolean;
  v_slug text;
begin
  -- One statement for the common case (64 tenants or fewer): the scan and the count that says
  -- whether it is enough, together (two statements cost ~24 us a call, one ~17 us; RLS calls
  -- this up to a dozen times per tool call). A superuser (pg_has_role is true for every role)
  -- gets no row, so null.
  select count(*) > 64, case when count(*) filter (where few.usable) = 1 then min(few.slug) filter (where few.usable) end
    into v_many, v_slug
    from (select substr(pg_catalog.pg_get_userbyid(m.member), 11) as slug,
                 pg_catalog.pg_get_userbyid(m.member) like 'sextant\_t\_%'
                   and pg_catalog.pg_has_role(current_user, m.member, 'USAGE') as usable
            from pg_catalog.pg_auth_members as m
           where m.roleid = 'sextant_tenant_reader'::regrole
           limit 65) as few
   where not exists (select from pg_catalog.pg_roles as s where s.rolname = current_user and s.rolsuper);
  if not v_many then
    return v_slug;
  end if;
  with recursive member_of(oid) as (
    select r.oid from pg_catalog.pg_roles as r where r.rolname = current_user and not r.rolsuper
    union
    select up.roleid
    from member_of as u
      cross join lateral (select m.roleid from pg_catalog.pg_auth_members as m where m.member = u.oid offset 0) as up
  ), first_roles as (
    select u.oid from member_of as u limit 65
  )
  select (select count(*) from first_roles) > 64,
         (select case when count(*) = 1 then min(substr(pg_catalog.pg_get_userbyid(t.member), 11)) end
          from first_roles as u
            cross join lateral (select m.member from pg_catalog.pg_auth_members as m
                                where m.member = u.oid and m.roleid = 'sextant_tenant_reader'::regrole
                                offset 0) as t
          where pg_catalog.pg_get_userbyid(t.member) like 'sextant\_t\_%'
            and pg_catalog.pg_has_role(current_user, t.member, 'USAGE'))
    into v_many, v_slug;
  if not v_many then
    return v_slug;
  end if;
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

-- Schemas that are never a tenant's data. One SQL expression with no SET clause, so PostgreSQL
-- inlines it into the calling statement (a SQL function with SET is called through the function
-- manager and plans its body again in every statement: resolve_table 30 -> 16 us). Inlined, it is
-- parsed with the caller's search_path, so every operator and type is pg_catalog's, by name.
create or replace function sextant_exec.is_internal_schema(schema_name text)
returns boolean
language sql immutable parallel safe
as $$
  select schema_name operator(pg_catalog.=) any ('{sextant,sextant_private,sextant_exec,information_schema,pg_catalog,pg_toast}'::pg_catalog.text[])
      or schema_name operator(pg_catalog.~~) 'pg\_%' or schema_name operator(pg_catalog.~~) 'graphile\_%'
      or schema_name operator(pg_catalog.~~) 'sextant\_stage\_%';
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
-- patterns, or the tenant's dbt project marks it (meta key or tag in sensitive_meta_keys). The
-- rule lives in two functions of their inputs, names_matching and dbt_marked_sensitive; the
-- wrappers after them read the tenant once: sensitive_columns (describe_table, sample_table),
-- sensitive_by_pattern and sensitive_by_dbt (get_metadata).
drop function if exists sextant_exec.is_sensitive_column(text);
drop function if exists sextant_exec.is_sensitive_column(text, text, text);

-- The rule itself, given the tenant's patterns: the names that match one of them,
-- case-insensitively. As one regular expression, (?:p1)|(?:p2)|…: one pass per name, not one
-- per pattern and name (40 columns, 13 patterns: 0.13 -> 0.04 ms), compiled once per session
-- (PostgreSQL caches 32 compiled regexes). Pattern by pattern where joining could change what a
-- pattern means: a backreference (\1 would count the groups of the patterns before it), an
-- embedded option such as (?i) or a director (***=), which are only valid at the start, a bound
-- ({n,m}: the compiler copies its operand, so patterns that each compile alone can be "too
-- complex" joined, or ask for a gigabyte), or a list too long to join. A null pattern matches
-- nothing (array_to_string would drop it; {NULL} joined is "(?:)", every name). (Each pattern
-- compiles on its own: `sextant tenant update` checks, and migration 000121's constraint holds
-- for every later write.) Pattern by pattern, the patterns are the outer loop (lateral, offset
-- 0): each compiled once per call, where names tried against the patterns in turn recompiled
-- every pattern for every name past 32 patterns.
create or replace function sextant_exec.names_matching(names text[], patterns text[])
returns text[]
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
  v_patterns text[] := array_remove(patterns, null);
  v_joined text := array_to_string(v_patterns, e'\x01');
begin
  if names is null or v_patterns is null or cardinality(v_patterns) = 0 then
    return '{}';
  end if;
  if length(v_joined) <= 10000 and strpos(v_joined, '{') = 0
     and v_joined !~ '(^|\x01)(\(\?[a-zA-Z]|\*\*\*)|\\[0-9]' then
    return array(select distinct nm from unnest(names) as nm
                 where nm ~* ('(?:' || array_to_string(v_patterns, ')|(?:') || ')'));
  end if;
  return array(select distinct m.name
               from unnest(v_patterns) as p,
                    lateral (select nm as name from unnest(names) as nm where nm ~* p offset 0) as m);
end
$$;
comment on function sextant_exec.names_matching(text[], text[]) is
  E'The names among these that match one of these regular expressions, case-insensitively.';
grant execute on function sextant_exec.names_matching(text[], text[]) to sextant_tenant_reader;

-- The rule's dbt half, given the tenant and its sensitive_meta_keys: the columns its dbt project
-- marks sensitive (a meta key that is true, or a tag), lower-cased; of one table, or of all with
-- nulls. RLS shows only the caller's own tenant's nodes, whatever `tenant` says.
create or replace function sextant_exec.dbt_marked_sensitive(tenant text, keys text[], of_schema text, of_table text)
returns table (schema_name text, table_name text, name text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select lower(n.schema_name), lower(n.alias), lower(c ->> 'name')
    from sextant.dbt_nodes as n
    cross join jsonb_array_elements(n.columns) as c
    where n.tenant_slug = dbt_marked_sensitive.tenant
      and (of_schema is null or lower(n.schema_name) = lower(of_schema))
      and (of_table is null or lower(n.alias) = lower(of_table))
      and exists (select from unnest(keys) as k
                  where lower(c -> 'meta' ->> k) in ('true', 'yes', '1') or coalesce(c -> 'tags', '[]') ? k);
end
$$;
comment on function sextant_exec.dbt_marked_sensitive(text, text[], text, text) is
  E'Columns (lower-cased) a tenant''s dbt project marks sensitive under these meta keys; of one table, or all.';
grant execute on function sextant_exec.dbt_marked_sensitive(text, text[], text, text) to sextant_tenant_reader;

-- The wrappers below read the tenant once (current_tenant() is a role-graph lookup, and RLS on
-- sextant.tenants and sextant.dbt_nodes calls it again per table).

-- The names (of columns) that match one of the current tenant's patterns.
create or replace function sextant_exec.sensitive_by_pattern(names text[])
returns text[]
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant text := sextant.current_tenant();
begin
  return sextant_exec.names_matching(names,
    (select t.sensitive_column_patterns from sextant.tenants as t where t.slug = v_tenant));
end
$$;
comment on function sextant_exec.sensitive_by_pattern(text[]) is
  E'The names among these that match one of the current tenant''s sensitive-column patterns.';
grant execute on function sextant_exec.sensitive_by_pattern(text[]) to sextant_tenant_reader;

-- The columns the current tenant's dbt project marks sensitive; of one table, or of all with nulls.
create or replace function sextant_exec.sensitive_by_dbt(of_schema text default null, of_table text default null)
returns table (schema_name text, table_name text, name text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant text := sextant.current_tenant();
begin
  return query
    select d.schema_name, d.table_name, d.name
    from sextant_exec.dbt_marked_sensitive(v_tenant,
           (select t.sensitive_meta_keys from sextant.tenants as t where t.slug = v_tenant), of_schema, of_table) as d;
end
$$;
comment on function sextant_exec.sensitive_by_dbt(text, text) is
  E'Columns (lower-cased) the current tenant''s dbt project marks sensitive; of one table, or all.';
grant execute on function sextant_exec.sensitive_by_dbt(text, text) to sextant_tenant_reader;

-- Both halves for all the columns of one table at once (describe_table, sample_table).
create or replace function sextant_exec.sensitive_columns(rel oid, schema_name text, table_name text)
returns text[]
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant text := sextant.current_tenant();
  v_names text[] := array(select a.attname::text from pg_catalog.pg_attribute as a
                          where a.attrelid = sensitive_columns.rel and a.attnum > 0 and not a.attisdropped);
  v_patterns text[];
  v_keys text[];
begin
  select t.sensitive_column_patterns, t.sensitive_meta_keys into v_patterns, v_keys
    from sextant.tenants as t where t.slug = v_tenant;
  return (
    select coalesce(array_agg(distinct x.name), '{}')
    from (select unnest(sextant_exec.names_matching(v_names, v_patterns)) as name
          union all
          select nm from unnest(v_names) as nm
          where lower(nm) in (select d.name
                              from sextant_exec.dbt_marked_sensitive(v_tenant, v_keys, sensitive_columns.schema_name,
                                                                     sensitive_columns.table_name) as d)) as x);
end
$$;
comment on function sextant_exec.sensitive_columns(oid, text, text) is
  E'The columns of one table that are sensitive for the current tenant (names_matching, dbt_marked_sensitive).';
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

-- sextant.tables with each relation's oid (relid), for list_tables to find one schema's
-- relations by index; not part of the API.
create or replace view sextant_exec.readable_tables with (security_invoker = true) as
  select c.oid as relid,
         n.nspname::text as schema_name,
         c.relname::text as table_name,
         case c.relkind
           when 'r' then 'table' when 'p' then 'partitioned table' when 'v' then 'view'
           when 'm' then 'materialized view' when 'f' then 'foreign table'
         end as kind,
         -- pg_description read here: obj_description() is a SQL function, run once per table.
         (select ds.description from pg_catalog.pg_description as ds
           where ds.objoid = c.oid and ds.classoid = 'pg_catalog.pg_class'::regclass and ds.objsubid = 0) as description,
         -- A source's table is a view here: its estimate is the remote one, kept at refresh time.
         -- Looked up for views only (a join probed sextant.source_tables, and its row policy's
         -- current_tenant(), once per table: 2 ms of a 100-table page).
         -- (A view's reltuples is -1: without a source's row its estimate stays null.)
         case when c.relkind = 'v' then (select st.estimated_rows from sextant.source_tables as st
                                          where st.local_schema = n.nspname and st.table_name = c.relname limit 1)
              when c.reltuples >= 0 then c.reltuples::bigint end as estimated_rows,
         -- From the statistics (relpages), like estimated_rows: no file system calls per table.
         case when c.relkind in ('r', 'm') and c.relpages > 0
              then c.relpages::bigint * current_setting('block_size')::bigint end as estimated_bytes,
         (select count(*) from pg_catalog.pg_attribute as a
           where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)::integer as column_count,
         -- Freshness of tables a pipeline produced (sql/materialize_swap.sql, finish_run).
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
grant select on sextant_exec.readable_tables to sextant_tenant_reader;

create or replace view sextant.tables with (security_invoker = true) as
  select t.schema_name, t.table_name, t.kind, t.description, t.estimated_rows, t.estimated_bytes, t.column_count,
         t.last_loaded_at, t.loaded_by_run, t.rows_changed
  from sextant_exec.readable_tables as t;
comment on view sextant.tables is E'@behavior -list -connection\nTables, views, materialized views and foreign tables the current role can read.';
grant select on sextant.tables to sextant_tenant_reader;

create or replace function sextant.list_tables(schema_name text default null, max_results integer default 100, page_offset integer default 0)
returns setof sextant.tables
language plpgsql stable
as $$
begin
  perform sextant.require_max_results(max_results);
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
    -- The schema's relations through pg_depend's index on the referenced object (every table,
    -- view, materialized view and foreign table depends on its schema: heap_create_with_catalog):
    -- pg_class has no index on relnamespace, and reading all of it (10,800 rows beside the bench's
    -- 2,000-table catalog) was most of the call.
    return query
      select t.schema_name, t.table_name, t.kind, t.description, t.estimated_rows, t.estimated_bytes, t.column_count,
             t.last_loaded_at, t.loaded_by_run, t.rows_changed
      from sextant_exec.readable_tables as t
      where t.schema_name = list_tables.schema_name
        and t.relid in (select d.objid from pg_catalog.pg_depend as d
                          join pg_catalog.pg_namespace as dn on dn.oid = d.refobjid
                         where dn.nspname = list_tables.schema_name
                           and d.refclassid = 'pg_catalog.pg_namespace'::regclass and d.refobjsubid = 0
                           and d.classid = 'pg_catalog.pg_class'::regclass and d.objsubid = 0)
      order by t.table_name
      limit max_results offset page_offset;
  end if;
end
$$;
comment on function sextant.list_tables(text, integer, integer) is
  E'Tables and views your tenant can read (one schema, or all), with comments, row estimates and size; '
  'paged by max_results (at most 1000) and page_offset.';
grant execute on function sextant.list_tables(text, integer, integer) to sextant_tenant_reader;

reset role;
