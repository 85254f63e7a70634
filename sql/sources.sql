-- Area: sources (other PostgreSQL databases a tenant reads through postgres_fdw). Called by the
-- CLI (`sextant source add|list|refresh|remove`, src/sources/) over the admin connection and by
-- the worker's scheduled refresh; tenants see their sources through list_databases and their
-- tables through every catalog and query tool, unchanged.
-- Invariants:
--   * a source of tenant <slug> is one foreign server, sextant_src__<slug>__<name>, and one
--     user mapping, for sextant_t_<slug>__remote: a NOLOGIN role that is granted to nobody
--     and inherits nothing, so no session that runs tenant SQL (the authenticator's tenant
--     roles, the per-tenant runner, an analyst login) is that role, and pg_user_mappings never
--     shows such a session the password (PostgreSQL shows a mapping's options to its own role);
--   * remote tables are imported into hidden schemas (sextant_fdw_<hash>) owned by that role;
--     the tenant reads them through views in <name>_<remoteschema>, owned by the same role, so
--     the view owner's mapping is the one used (a view checks and connects as its owner);
--   * tenant roles have no USAGE on the server, cannot create mappings or foreign tables, and
--     have no privilege on the hidden schemas;
--   * the remote session is read-only whatever the remote role may do (libpq `options`:
--     default_transaction_read_only=on and the tenant's statement_timeout), and postgres_fdw
--     refuses local writes (updatable/truncatable false); tenant SQL is read-only anyway;
--   * a refresh happens in a subtransaction: when the remote fails, the previous tables stay.
-- This file: names, the remote session's options, the per-tenant importer and __remote role,
-- a source's local schema. sources_refresh.sql re-imports (on demand, on the worker's
-- schedule); sources_admin.sql adds and removes sources and allowed hosts (operators, tenant
-- admins); sources_catalog.sql is what catalog and query tools ask about a source's tables.

set role sextant_owner;

create or replace function sextant_private.source_server_name(slug text, name text)
returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select 'sextant_src__' || slug || '__' || name;
$$;
comment on function sextant_private.source_server_name(text, text) is
  E'The foreign server of a tenant''s source.';
revoke all on function sextant_private.source_server_name(text, text) from public;

-- A hidden schema per (source, remote schema): the hash keeps it short and opaque.
create or replace function sextant_private.source_hidden_schema(slug text, name text, remote_schema text)
returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select 'sextant_fdw_' || left(md5(slug || '/' || name || '/' || coalesce(remote_schema, '')), 20);
$$;
comment on function sextant_private.source_hidden_schema(text, text, text) is
  E'The schema a source''s remote schema is imported into (null remote schema: the source''s own metadata).';
revoke all on function sextant_private.source_hidden_schema(text, text, text) from public;

reset role;

-- The remote session's libpq `options`: read-only by default (postgres_fdw opens its own
-- transactions there, which inherit it) and bounded by the tenant's statement timeout.
create or replace function sextant_private.source_session_options(statement_timeout_ms integer)
returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select format('-c default_transaction_read_only=on -c statement_timeout=%s -c idle_in_transaction_session_timeout=%s',
                statement_timeout_ms, greatest(statement_timeout_ms * 4, 60000));
$$;
revoke all on function sextant_private.source_session_options(integer) from public;

-- The CREATE FUNCTION text of a tenant's source importer: everything that reaches a remote
-- server runs inside it, as sextant_t_<slug>__remote (it is SECURITY DEFINER and owned by that
-- role, whose user mapping is then the one used). A function, not SET ROLE, so that callers
-- that are themselves SECURITY DEFINER (a tenant admin's add_source, the worker's scheduled
-- refresh) can use it too. Returns the server version, how many tables it imported and what
-- the remote catalog says about each ("schema.table" -> comment, row estimate, keys, indexes,
-- column statistics); the remote catalog's text is stored and shown as data, never run.
create or replace function sextant_private.source_importer_source(slug text)
returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $f$
select format($src$
create or replace function sextant_exec.%I(name text, server text, remote_schemas text[], hiddens text[], meta text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $body$
#variable_conflict use_variable
declare
  v_version text;
  v_count integer := 0;
  v_facts jsonb := '{}';
  v_atts jsonb;
  v_remote text;
  v_hidden text;
  v_local text;
  v_table record;
  v_fact record;
begin
  execute format('create foreign table %%I.settings (name text, setting text) server %%I options (schema_name %%L, table_name %%L)',
                 meta, server, 'pg_catalog', 'pg_settings');
  -- The version, and the first connection: a wrong host or password fails here.
  execute format('select setting from %%I.settings where name = %%L', meta, 'server_version') into v_version;
  -- The remote catalog: joins of these are sent to the remote server as one query each.
  -- (int2vector indkey arrives as its text, "1 2", and is split below; pg_stats shows only the
  -- columns the remote role may read.)
  for v_table in select * from (values
      ('namespaces', 'oid oid, nspname name', 'pg_namespace'),
      ('classes', 'oid oid, relname name, relnamespace oid, relkind "char", reltuples real', 'pg_class'),
      ('descriptions', 'objoid oid, classoid oid, objsubid integer, description text', 'pg_description'),
      ('attributes', 'attrelid oid, attnum smallint, attname name, attisdropped boolean', 'pg_attribute'),
      ('constraints', 'conrelid oid, conname name, contype "char", conkey smallint[], confrelid oid, confkey smallint[]', 'pg_constraint'),
      ('indexes', 'indexrelid oid, indrelid oid, indisunique boolean, indisprimary boolean, indkey text', 'pg_index'),
      ('stats', 'schemaname name, tablename name, attname name, null_frac real, avg_width integer, n_distinct real', 'pg_stats'))
      as c(local_name, columns, catalog)
  loop
    execute format('create foreign table %%I.%%I (%%s) server %%I options (schema_name %%L, table_name %%L)',
                   meta, v_table.local_name, v_table.columns, server, 'pg_catalog', v_table.catalog);
  end loop;

  for i in 1 .. cardinality(remote_schemas) loop
    v_remote := remote_schemas[i];
    v_hidden := hiddens[i];
    v_local := name || '_' || v_remote;
    execute format('import foreign schema %%I from server %%I into %%I', v_remote, server, v_hidden);
    for v_table in
      select c.relname::text as relname
      from pg_catalog.pg_class as c
      where c.relnamespace = v_hidden::regnamespace and c.relkind = 'f'
      order by c.relname
    loop
      -- A plain view (not security_invoker): it reads the foreign table as its owner.
      execute format('create view %%I.%%I as select * from %%I.%%I', v_local, v_table.relname, v_hidden, v_table.relname);
      execute format('comment on view %%I.%%I is %%L', v_local, v_table.relname,
                     format('%%s.%%s of source %%s', v_remote, v_table.relname, name));
      -- Local statistics (sampled remotely) help the planner; a table that cannot be sampled
      -- within the remote statement timeout (a slow remote view) keeps none.
      begin
        execute format('analyze %%I.%%I', v_hidden, v_table.relname);
      exception when query_canceled or sqlclient_unable_to_establish_sqlconnection or fdw_error then
        null;
      end;
      v_count := v_count + 1;
    end loop;

    -- Column names by "relid.attnum" for the schema's tables and the tables their foreign keys point at.
    execute format($q$
        select coalesce(jsonb_object_agg(a.attrelid || '.' || a.attnum, a.attname::text), '{}')
        from (select a.attrelid, a.attnum, a.attname
                from %%1$I.attributes as a
                join %%1$I.classes as c on c.oid = a.attrelid
                join %%1$I.namespaces as n on n.oid = c.relnamespace
               where n.nspname = $1 and a.attnum > 0 and not a.attisdropped
              union
              select a.attrelid, a.attnum, a.attname
                from %%1$I.attributes as a
                join %%1$I.constraints as k on k.confrelid = a.attrelid
                join %%1$I.classes as c on c.oid = k.conrelid
                join %%1$I.namespaces as n on n.oid = c.relnamespace
               where n.nspname = $1 and k.contype = 'f' and a.attnum > 0) as a$q$, meta)
      into v_atts using v_remote;

    -- Table facts (1259 is pg_class's OID on every PostgreSQL): comment and row estimate.
    for v_fact in execute format($q$
        select c.oid, c.relname::text as relname, left(d.description, 2000) as description,
               case when c.reltuples >= 0 then c.reltuples::bigint end as estimated_rows
        from %%1$I.classes as c
        join %%1$I.namespaces as n on n.oid = c.relnamespace
        left join %%1$I.descriptions as d on d.objoid = c.oid and d.classoid = 1259 and d.objsubid = 0
        where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f')$q$, meta) using v_remote
    loop
      continue when to_regclass(format('%%I.%%I', v_local, v_fact.relname)) is null;
      v_facts := v_facts || jsonb_build_object(v_remote || '.' || v_fact.relname, jsonb_build_object(
        'oid', v_fact.oid, 'description', v_fact.description, 'estimated_rows', v_fact.estimated_rows,
        'primary_key', '[]'::jsonb, 'foreign_keys', '[]'::jsonb, 'indexes', '[]'::jsonb, 'column_stats', '[]'::jsonb));
    end loop;

    -- Primary, unique and foreign keys.
    for v_fact in execute format($q$
        select c.relname::text as relname, k.conname::text as conname, k.contype::text as contype, k.conrelid, k.conkey,
               k.confrelid, k.confkey, rn.nspname::text as ref_schema, rc.relname::text as ref_table
        from %%1$I.constraints as k
        join %%1$I.classes as c on c.oid = k.conrelid
        join %%1$I.namespaces as n on n.oid = c.relnamespace
        left join %%1$I.classes as rc on rc.oid = k.confrelid
        left join %%1$I.namespaces as rn on rn.oid = rc.relnamespace
        where n.nspname = $1 and k.contype in ('p', 'u', 'f')
        order by k.conname$q$, meta) using v_remote
    loop
      continue when not v_facts ? (v_remote || '.' || v_fact.relname);
      if v_fact.contype = 'p' then
        v_facts := jsonb_set(v_facts, array[v_remote || '.' || v_fact.relname, 'primary_key'],
          to_jsonb(array(select coalesce(v_atts ->> (v_fact.conrelid || '.' || k), '#' || k) from unnest(v_fact.conkey) with ordinality as u(k, o) order by o)));
      elsif v_fact.contype = 'f' then
        v_facts := jsonb_set(v_facts, array[v_remote || '.' || v_fact.relname, 'foreign_keys'],
          (v_facts #> array[v_remote || '.' || v_fact.relname, 'foreign_keys']) || jsonb_build_array(jsonb_build_object(
            'name', v_fact.conname,
            'columns', array(select coalesce(v_atts ->> (v_fact.conrelid || '.' || k), '#' || k) from unnest(v_fact.conkey) with ordinality as u(k, o) order by o),
            'references', case when v_fact.ref_schema = v_remote then v_local || '.' || v_fact.ref_table
                               else v_fact.ref_schema || '.' || v_fact.ref_table || ' (remote)' end,
            'referenced_columns', array(select coalesce(v_atts ->> (v_fact.confrelid || '.' || k), '#' || k) from unnest(v_fact.confkey) with ordinality as u(k, o) order by o))));
      end if;
    end loop;

    -- Indexes (an expression column shows as "(expression)").
    for v_fact in execute format($q$
        select c.relname::text as relname, ic.relname::text as index_name, x.indisunique, x.indisprimary, x.indrelid, x.indkey
        from %%1$I.indexes as x
        join %%1$I.classes as c on c.oid = x.indrelid
        join %%1$I.classes as ic on ic.oid = x.indexrelid
        join %%1$I.namespaces as n on n.oid = c.relnamespace
        where n.nspname = $1
        order by ic.relname$q$, meta) using v_remote
    loop
      continue when not v_facts ? (v_remote || '.' || v_fact.relname);
      v_facts := jsonb_set(v_facts, array[v_remote || '.' || v_fact.relname, 'indexes'],
        (v_facts #> array[v_remote || '.' || v_fact.relname, 'indexes']) || jsonb_build_array(jsonb_build_object(
          'name', v_fact.index_name, 'unique', v_fact.indisunique, 'primary', v_fact.indisprimary,
          'columns', array(select case when k = '0' then '(expression)' else coalesce(v_atts ->> (v_fact.indrelid || '.' || k), '#' || k) end
                           from unnest(string_to_array(btrim(v_fact.indkey), ' ')) with ordinality as u(k, o) order by o))));
    end loop;

    -- Column statistics of the remote planner.
    for v_fact in execute format($q$
        select s.tablename::text as relname,
               jsonb_agg(jsonb_build_object('column', s.attname::text, 'null_fraction', s.null_frac, 'distinct', s.n_distinct, 'average_width', s.avg_width)
                         order by s.attname) as stats
        from (select s.tablename, s.attname, s.null_frac, s.n_distinct, s.avg_width from %%1$I.stats as s where s.schemaname = $1) as s
        group by s.tablename$q$, meta) using v_remote
    loop
      continue when not v_facts ? (v_remote || '.' || v_fact.relname);
      v_facts := jsonb_set(v_facts, array[v_remote || '.' || v_fact.relname, 'column_stats'], v_fact.stats);
    end loop;

    -- Comments on the views: the remote comment, where it comes from, its primary key.
    for v_fact in
      select substr(e.k, length(v_remote) + 2) as relname, e.f
      from jsonb_each(v_facts) as e(k, f)
      where left(e.k, length(v_remote) + 1) = v_remote || '.'
    loop
      execute format('comment on view %%I.%%I is %%L', v_local, v_fact.relname,
                     concat_ws(' ', (v_fact.f ->> 'description') || E'\n',
                               format('(%%s.%%s of source %%s%%s)', v_remote, v_fact.relname, name,
                                      '; primary key ' || nullif(array_to_string(array(select jsonb_array_elements_text(v_fact.f -> 'primary_key')), ', '), ''))));
    end loop;
    -- Column comments.
    for v_fact in execute format($q$
        select c.relname::text as relname, a.attname::text as attname, left(d.description, 2000) as description
        from %%1$I.classes as c
        join %%1$I.namespaces as n on n.oid = c.relnamespace
        join %%1$I.descriptions as d on d.objoid = c.oid and d.classoid = 1259 and d.objsubid > 0
        join %%1$I.attributes as a on a.attrelid = c.oid and a.attnum = d.objsubid
        where n.nspname = $1$q$, meta) using v_remote
    loop
      continue when not exists (
        select from pg_catalog.pg_attribute as a
        where a.attrelid = to_regclass(format('%%I.%%I', v_local, v_fact.relname)) and a.attname = v_fact.attname and not a.attisdropped);
      execute format('comment on column %%I.%%I.%%I is %%L', v_local, v_fact.relname, v_fact.attname, v_fact.description);
    end loop;
  end loop;
  return jsonb_build_object('version', v_version, 'count', v_count, 'facts', v_facts);
end
$body$
$src$, 'import_source__' || slug);
$f$;
comment on function sextant_private.source_importer_source(text) is
  E'The CREATE FUNCTION text of a tenant''s source importer (run as its __remote role).';
revoke all on function sextant_private.source_importer_source(text) from public;

-- A tenant's __remote role and its importer (re-run for every such role whenever this file is
-- applied, so the importer follows this file). The role is NOLOGIN, NOINHERIT and granted only
-- to sextant_owner, whose SECURITY DEFINER functions (a tenant admin's add_source, the worker's
-- scheduled refresh) create its schemas; no session that runs tenant SQL is or becomes it.
-- Admin rights needed (it creates a role and hands it a function).
create or replace function sextant_private.install_source_role(slug text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_role text := 'sextant_t_' || slug || '__remote';
  v_fn text := format('sextant_exec.%I(text, text, text[], text[], text)', 'import_source__' || slug);
begin
  if to_regrole(v_role) is null then
    execute format('create role %I nologin noinherit', v_role);
  end if;
  -- Handing it a function takes membership (see install_definer in sql/query.sql).
  if not pg_has_role(v_role, case when current_setting('server_version_num')::int >= 160000 then 'SET' else 'MEMBER' end) then
    execute format('grant %I to %I', v_role, current_user);
  end if;
  execute sextant_private.source_importer_source(slug);
  execute format('grant create on schema sextant_exec to %I', v_role);
  execute format('alter function %s owner to %I', v_fn, v_role);
  execute format('revoke create on schema sextant_exec from %I', v_role);
  execute format('revoke all on function %s from public', v_fn);
  execute format('grant execute on function %s to sextant_owner', v_fn);
  execute format('grant %I to sextant_owner', v_role);
end
$$;
comment on function sextant_private.install_source_role(text) is
  E'Creates (or refreshes) a tenant''s __remote role and its source importer.';
revoke all on function sextant_private.install_source_role(text) from public;

-- A tenant's source, locked for the change its caller makes (refresh, remove); SX404 if none.
create or replace function sextant_private.lock_source(slug text, name text)
returns sextant.sources
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_src sextant.sources;
begin
  select * into v_src from sextant.sources as s where s.tenant_slug = slug and s.name = name for update;
  if v_src.name is null then
    raise exception 'tenant % has no source %', slug, name
      using errcode = 'SX404', hint = 'Run `sextant source list --tenant ' || slug || '` to see its sources.';
  end if;
  return v_src;
end
$$;
revoke all on function sextant_private.lock_source(text, text) from public;
grant execute on function sextant_private.lock_source(text, text) to sextant_owner;

-- Sources need postgres_fdw (migrations create it where the admin may; sextant_private).
create or replace function sextant_private.require_postgres_fdw()
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from pg_catalog.pg_extension where extname = 'postgres_fdw') then
    raise exception 'sources need the postgres_fdw extension, which is not installed'
      using errcode = 'SX400', hint = 'As a superuser: create extension postgres_fdw schema sextant_private.';
  end if;
end
$$;
revoke all on function sextant_private.require_postgres_fdw() from public;
grant execute on function sextant_private.require_postgres_fdw() to sextant_owner;

-- A source's local schema <name>_<remote schema>: the tenant's, not provisioned (teardown_schema
-- and the TTL leave it alone), owned by sextant_owner. Not map_schema: that applies the tenant's
-- filters to every schema it has, which only the admin may (other roles' tables).
create or replace function sextant_private.source_local_schema(slug text, schema_name text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select from sextant.tenant_schemas as s where s.schema_name = source_local_schema.schema_name) then
    update sextant.tenant_schemas as s set provisioned = false, expires_at = null where s.schema_name = source_local_schema.schema_name;
    return;
  end if;
  execute format('create schema %I authorization sextant_owner', schema_name);
  execute format('grant usage on schema %I to %I', schema_name, 'sextant_t_' || slug);
  insert into sextant.tenant_schemas (schema_name, tenant_slug, provisioned) values (schema_name, slug, false);
end
$$;
revoke all on function sextant_private.source_local_schema(text, text) from public;

grant execute on function sextant_private.source_local_schema(text, text) to sextant_owner;
grant execute on function sextant_private.source_session_options(integer) to sextant_owner;

-- Every tenant that has a source or an allowed host gets this file's importer; sextant_owner
-- may create foreign servers (for tenant admins). Needs the admin (and the FDW's owner for the
-- second; an admin that is not it is told).
do $$
declare
  v_slug text;
begin
  for v_slug in
    select s.tenant_slug from sextant.sources as s union select h.tenant_slug from sextant_private.source_hosts as h
  loop
    perform sextant_private.install_source_role(v_slug);
  end loop;
  if exists (select from pg_catalog.pg_extension where extname = 'postgres_fdw') then
    begin
      execute 'grant usage on foreign data wrapper postgres_fdw to sextant_owner';
    exception when insufficient_privilege then
      raise warning 'sources: grant usage on foreign data wrapper postgres_fdw to sextant_owner needs its owner; tenant admins cannot add sources until it is run';
    end;
  end if;
end
$$;
