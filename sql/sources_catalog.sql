-- Area: sources, what catalog and query tools ask about a source's tables (sql/sources.sql has
-- the invariants): describe_table's remote facts (sql/catalog_tables.sql) and the query
-- runner's naming of a failing source (sql/query.sql).
-- Invariants: both run as the caller; RLS on sextant.sources and sextant.source_tables shows a
-- tenant its own sources only.

set role sextant_owner;

-- What the remote catalog said about a source's table at its last refresh, for describe_table
-- (sql/catalog_tables.sql): a source's tables are views here, so PostgreSQL's own catalog has
-- no keys, indexes, statistics or row estimate for them. Null for any other relation. Runs as
-- the caller: RLS on sextant.source_tables shows a tenant its own sources only.
create or replace function sextant_exec.source_table_facts(schema_name text, table_name text)
returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('source', st.source_name, 'remote_table', st.remote_schema || '.' || st.table_name,
                            'refreshed_at', st.refreshed_at, 'estimated_rows', st.estimated_rows,
                            'primary_key', to_jsonb(st.primary_key), 'foreign_keys', st.foreign_keys,
                            'indexes', st.indexes, 'column_stats', st.column_stats)
  from sextant.source_tables as st
  where st.local_schema = source_table_facts.schema_name and st.table_name = source_table_facts.table_name;
$$;
comment on function sextant_exec.source_table_facts(text, text) is
  E'A source table''s remote keys, indexes, row estimate and column statistics from its last refresh (null otherwise).';
revoke all on function sextant_exec.source_table_facts(text, text) from public;
grant execute on function sextant_exec.source_table_facts(text, text) to sextant_tenant_reader;

-- A source's server failing while the runner reads rows (sql/query.sql): postgres_fdw names
-- no server then, only the remote SQL in the error's context. The plan's foreign scans say
-- which hidden schemas they read (the failing scan is the one whose Remote SQL is the
-- context's; all of them if none is), their foreign tables' server says which source. Raises
-- SX504 for a remote cancel (its statement timeout), SX502 for a lost connection, a shutdown
-- or a lack of resources there; returns for anything else (a data error in pushed-down SQL
-- stays the caller's). Runs as the caller: RLS on sextant.sources shows its own sources only.
create or replace function sextant_exec.raise_source_failure(plan jsonb, state text, message text, context text)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_remote text := substring(context from 'remote SQL command: ([^\n]*)');
  v_schemas text[];
  v_all text[];
  v_names text;
begin
  if v_remote is null or plan is null or left(state, 2) not in ('08', '57', '53') then
    return;
  end if;
  select array_agg(distinct m[1]) filter (where n.node ->> 'Remote SQL' = v_remote),
         array_agg(distinct m[1])
    into v_schemas, v_all
    from jsonb_path_query(plan, '$.** ? (@."Node Type" == "Foreign Scan")') as n(node),
         regexp_matches(n.node::text, '(sextant_fdw_[0-9a-f]{20})', 'g') as m;
  v_schemas := coalesce(v_schemas, v_all);
  select string_agg(distinct s.name, ' or ') into v_names
    from pg_catalog.pg_namespace as ns
    join pg_catalog.pg_class as c on c.relnamespace = ns.oid
    join pg_catalog.pg_foreign_table as ft on ft.ftrelid = c.oid
    join pg_catalog.pg_foreign_server as fs on fs.oid = ft.ftserver
    join sextant.sources as s on s.server_name = fs.srvname
   where ns.nspname = any (v_schemas);
  if v_names is null then
    return;
  end if;
  if state = '57014' then
    raise exception 'source % canceled the query: %', v_names, message
      using errcode = 'SX504',
            hint = 'The remote server ended its part of the query (its statement timeout is your tenant''s, '
                   'set at the source''s last refresh). Filter or aggregate more so the remote reads less.';
  end if;
  raise exception 'source %: its PostgreSQL server % during the query', v_names,
    case when left(state, 2) = '08' then 'closed the connection' else 'stopped (' || message || ')' end
    using errcode = 'SX502',
          hint = 'Other sources and local tables still work; run the query again, or ask an operator to check the source (`sextant source list`).';
end
$$;
comment on function sextant_exec.raise_source_failure(jsonb, text, text, text) is
  E'Names the source whose server failed a query (SX502, SX504 for its statement timeout); returns for other errors.';
revoke all on function sextant_exec.raise_source_failure(jsonb, text, text, text) from public;
grant execute on function sextant_exec.raise_source_failure(jsonb, text, text, text) to sextant_tenant_reader;

reset role;
