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
  execute format('create foreign table %%I.namespaces (oid oid, nspname name) server %%I options (schema_name %%L, table_name %%L)',
                 meta, server, 'pg_catalog', 'pg_namespace');
  execute format('create foreign table %%I.classes (oid oid, relname name, relnamespace oid, relkind "char", reltuples real) server %%I options (schema_name %%L, table_name %%L)',
                 meta, server, 'pg_catalog', 'pg_class');
  execute format('create foreign table %%I.descriptions (objoid oid, classoid oid, objsubid integer, description text) server %%I options (schema_name %%L, table_name %%L)',
                 meta, server, 'pg_catalog', 'pg_description');
  execute format('create foreign table %%I.attributes (attrelid oid, attnum smallint, attname name, attisdropped boolean) server %%I options (schema_name %%L, table_name %%L)',
                 meta, server, 'pg_catalog', 'pg_attribute');
  execute format('create foreign table %%I.constraints (conrelid oid, conname name, contype "char", conkey smallint[], confrelid oid, confkey smallint[]) server %%I options (schema_name %%L, table_name %%L)',
                 meta, server, 'pg_catalog', 'pg_constraint');
  -- int2vector arrives as its text ("1 2") and is split here.
  execute format('create foreign table %%I.indexes (indexrelid oid, indrelid oid, indisunique boolean, indisprimary boolean, indkey text) server %%I options (schema_name %%L, table_name %%L)',
                 meta, server, 'pg_catalog', 'pg_index');
  -- pg_stats shows only the columns the remote role may read.
  execute format('create foreign table %%I.stats (schemaname name, tablename name, attname name, null_frac real, avg_width integer, n_distinct real) server %%I options (schema_name %%L, table_name %%L)',
                 meta, server, 'pg_catalog', 'pg_stats');

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

-- Re-imports a source: the remote tables that exist now, with their columns now, replace the
-- previous ones (new, changed and dropped tables follow). With strict, a failure raises SX502
-- naming the source; without, it is recorded (status 'failed', last_error) and the previous
-- tables stay. Run by the admin (CLI) or by sextant_owner's functions (a tenant admin's
-- add_source, the worker's schedule): it needs the tenant's importer (install_source_role).
create or replace function sextant_private.refresh_source(slug text, name text, strict boolean default false)
returns sextant.sources
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_src sextant.sources;
  v_tenant sextant.tenants;
  v_role text := 'sextant_t_' || slug || '__remote';
  v_meta text := sextant_private.source_hidden_schema(slug, name, null);
  v_remote text;
  v_hidden text;
  v_hiddens text[] := '{}';
  v_local text;
  v_result jsonb;
  v_fact jsonb;
  v_table record;
  v_message text;
begin
  select * into v_src from sextant.sources as s
  where s.tenant_slug = refresh_source.slug and s.name = refresh_source.name
  for update;
  if v_src.name is null then
    raise exception 'tenant % has no source %', slug, name
      using errcode = 'SX404', hint = 'Run `sextant source list --tenant ' || slug || '` to see its sources.';
  end if;
  select * into v_tenant from sextant.tenants as t where t.slug = refresh_source.slug;
  update sextant.sources as s set last_attempt_at = now() where s.tenant_slug = slug and s.name = name;

  begin
    -- Dropping a hidden schema drops its foreign tables and, through them, the views.
    foreach v_remote in array v_src.remote_schemas loop
      v_hidden := sextant_private.source_hidden_schema(slug, name, v_remote);
      v_hiddens := v_hiddens || v_hidden;
      v_local := name || '_' || v_remote;
      execute format('drop schema if exists %I cascade', v_hidden);
      execute format('create schema %I authorization %I', v_hidden, v_role);
      perform sextant_private.source_local_schema(slug, v_local);
      execute format('grant usage, create on schema %I to %I', v_local, v_role);
    end loop;
    execute format('drop schema if exists %I cascade', v_meta);
    execute format('create schema %I authorization %I', v_meta, v_role);
    -- The remote session follows the tenant's statement timeout as it is now (postgres_fdw
    -- reconnects when a server's options change). srvoptions is not readable here (PUBLIC lost
    -- it), so the options are set whenever the caller owns the server.
    if pg_has_role((select fs.srvowner from pg_catalog.pg_foreign_server as fs where fs.srvname = v_src.server_name), 'USAGE') then
      execute format('alter server %I options (set options %L)', v_src.server_name,
                     sextant_private.source_session_options(v_tenant.statement_timeout_ms));
    end if;

    -- Everything that reaches the remote runs as the mapped role, the only one with a mapping.
    execute format('select sextant_exec.%I($1, $2, $3, $4, $5)', 'import_source__' || slug)
      into v_result using name, v_src.server_name, v_src.remote_schemas, v_hiddens, v_meta;

    delete from sextant.source_tables as st where st.tenant_slug = slug and st.source_name = name;
    foreach v_remote in array v_src.remote_schemas loop
      v_hidden := sextant_private.source_hidden_schema(slug, name, v_remote);
      v_local := name || '_' || v_remote;
      for v_table in
        select c.relname::text as relname, c.oid,
               (select count(*) from pg_catalog.pg_attribute as a
                 where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)::integer as column_count
        from pg_catalog.pg_class as c
        where c.relnamespace = v_hidden::regnamespace and c.relkind = 'f'
      loop
        v_fact := coalesce(v_result -> 'facts' -> (v_remote || '.' || v_table.relname), '{}');
        insert into sextant.source_tables (tenant_slug, source_name, remote_schema, table_name, local_schema, column_count,
                                           description, estimated_rows, primary_key, foreign_keys, indexes, column_stats)
        values (slug, name, v_remote, v_table.relname, v_local, v_table.column_count,
                v_fact ->> 'description', (v_fact ->> 'estimated_rows')::bigint,
                array(select jsonb_array_elements_text(coalesce(v_fact -> 'primary_key', '[]'))),
                coalesce(v_fact -> 'foreign_keys', '[]'), coalesce(v_fact -> 'indexes', '[]'), coalesce(v_fact -> 'column_stats', '[]'));
        -- SELECT for the tenant's reader unless its allow/deny lists exclude the view (the
        -- predicate of apply_table_filters, for this source's views only).
        if (cardinality(v_tenant.allowed_tables) > 0
              and not exists (select from unnest(v_tenant.allowed_tables) as p where v_local || '.' || v_table.relname like p))
           or exists (select from unnest(v_tenant.excluded_tables) as p where v_local || '.' || v_table.relname like p) then
          execute format('revoke select on %I.%I from %I', v_local, v_table.relname, v_tenant.reader_role);
        else
          execute format('grant select on %I.%I to %I', v_local, v_table.relname, v_tenant.reader_role);
        end if;
      end loop;
      execute format('revoke usage, create on schema %I from %I', v_local, v_role);
    end loop;
  exception when others then
    get stacked diagnostics v_message = message_text;
    if strict then
      raise exception 'source % could not be refreshed: %', name, v_message
        using errcode = 'SX502', hint = 'Check the host, port, database, user, password and schemas of the source, and that the server is up.';
    end if;
    update sextant.sources as s set status = 'failed', last_error = left(v_message, 1000)
    where s.tenant_slug = slug and s.name = name
    returning * into v_src;
    return v_src;
  end;

  update sextant.sources as s
     set status = 'ok', last_error = null, server_version = v_result ->> 'version', last_refreshed_at = now(),
         table_count = (v_result ->> 'count')::integer
   where s.tenant_slug = slug and s.name = name
  returning * into v_src;
  return v_src;
end
$$;
comment on function sextant_private.refresh_source(text, text, boolean) is
  E'Re-imports a source''s remote schemas; records (or with strict, raises) a failure.';
revoke all on function sextant_private.refresh_source(text, text, boolean) from public;

-- Creates a source and imports it. `hostaddr` is the address the caller's host check passed
-- (src/sources/): libpq connects to it and uses `host` only for TLS, so DNS cannot answer
-- differently between the check and the connection. The password goes into the user mapping
-- only; no table, log line or error holds it.
create or replace function sextant_private.add_source(
  slug text, name text, host text, hostaddr text, port integer, dbname text,
  remote_user text, password text, sslmode text, remote_schemas text[])
returns sextant.sources
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_tenant sextant.tenants;
  v_server text := sextant_private.source_server_name(slug, name);
  v_role text := 'sextant_t_' || slug || '__remote';
  v_remote text;
  v_local text;
  v_options text;
begin
  select * into v_tenant from sextant.tenants as t where t.slug = add_source.slug;
  if v_tenant.slug is null then
    raise exception 'tenant % does not exist', slug
      using errcode = 'SX404', hint = 'Run `sextant tenant list` to see the tenants.';
  end if;
  if not exists (select from pg_catalog.pg_extension where extname = 'postgres_fdw') then
    raise exception 'sources need the postgres_fdw extension, which is not installed'
      using errcode = 'SX400', hint = 'As a superuser: create extension postgres_fdw schema sextant_private.';
  end if;
  if name is null or name !~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$' or length(name) > 30 then
    raise exception 'source name % is invalid', coalesce(name, 'null')
      using errcode = 'SX400', hint = 'Use up to 30 lower-case letters and digits, single underscores between words, starting with a letter.';
  end if;
  -- Local schemas <name>_<schema> must not look like Sextant's own (sextant_*) or like a
  -- tenant's provisioned schemas (t_<tenant>__<name>).
  if name like 'sextant%' or name = 't' or name like 't\_%' then
    raise exception 'source name % is reserved', name
      using errcode = 'SX400', hint = 'Source names may not start with "sextant" or "t_", nor be "t".';
  end if;
  if length(v_server) > 63 then
    raise exception 'source name % is too long for tenant %', name, slug
      using errcode = 'SX400', hint = format('Use at most %s characters.', 63 - length(v_server) + length(name));
  end if;
  if exists (select from sextant.sources as s where s.tenant_slug = add_source.slug and s.name = add_source.name) then
    raise exception 'tenant % already has a source %', slug, name
      using errcode = 'SX409', hint = 'Run `sextant source refresh` to re-import it, or `sextant source remove` first.';
  end if;
  if host is null or host !~ '^([A-Za-z0-9.-]+|[0-9A-Fa-f:.]+)$' or length(host) > 253 then
    raise exception 'the source host is not a host name or an address' using errcode = 'SX400';
  end if;
  if hostaddr is not null and hostaddr !~ '^[0-9A-Fa-f:.]+$' then
    raise exception 'the source host address is not an IP address' using errcode = 'SX400';
  end if;
  if port is null or port not between 1 and 65535 then
    raise exception 'the source port must be between 1 and 65535' using errcode = 'SX400';
  end if;
  if coalesce(dbname, '') = '' or coalesce(remote_user, '') = '' then
    raise exception 'the source URL must name a database and a user' using errcode = 'SX400';
  end if;
  if length(dbname) > 63 or length(remote_user) > 63 or length(password) > 1000 then
    raise exception 'the source''s database or user name is over 63 characters, or its password over 1000' using errcode = 'SX400';
  end if;
  -- postgres_fdw lets a role that is not a superuser connect only with a password.
  if coalesce(password, '') = '' then
    raise exception 'the source URL must carry a password'
      using errcode = 'SX400', hint = 'postgres_fdw connects for a tenant role only with password authentication.';
  end if;
  if sslmode is not null and sslmode not in ('disable', 'prefer', 'require', 'verify-ca', 'verify-full') then
    raise exception 'sslmode % is not one of disable, prefer, require, verify-ca, verify-full', sslmode using errcode = 'SX400';
  end if;
  if coalesce(cardinality(remote_schemas), 0) not between 1 and 20 then
    raise exception 'a source imports between 1 and 20 remote schemas' using errcode = 'SX400';
  end if;
  foreach v_remote in array remote_schemas loop
    if v_remote is null or v_remote !~ '^[a-z_][a-z0-9_]*$' or v_remote like 'pg\_%' or v_remote = 'information_schema' then
      raise exception 'remote schema % is not a plain lower-case identifier', coalesce(v_remote, 'null')
        using errcode = 'SX400', hint = 'Sources import schemas named with lower-case letters, digits and underscores (not pg_* or information_schema).';
    end if;
    v_local := name || '_' || v_remote;
    if length(v_local) > 63 then
      raise exception 'the local schema % would be longer than 63 characters', v_local using errcode = 'SX400';
    end if;
    if exists (select from pg_catalog.pg_namespace as n where n.nspname = v_local)
       or exists (select from sextant.tenant_schemas as s where s.schema_name = v_local) then
      raise exception 'schema % already exists', v_local
        using errcode = 'SX409', hint = 'Pick another source name: its tables go into <name>_<remote schema>.';
    end if;
  end loop;
  if (select count(distinct r) from unnest(remote_schemas) as r) <> cardinality(remote_schemas) then
    raise exception 'a remote schema is named twice' using errcode = 'SX400';
  end if;

  if current_user::text = 'sextant_owner' then
    -- A tenant admin's add_source: the operator's `sextant source allow` made the role.
    if to_regprocedure(format('sextant_exec.%I(text, text, text[], text[], text)', 'import_source__' || slug)) is null then
      raise exception 'tenant % may not add sources yet', slug
        using errcode = 'SX403', hint = 'An operator allows hosts with `sextant source allow`.';
    end if;
  else
    perform sextant_private.install_source_role(slug);
  end if;
  -- The remote session: read-only by default (postgres_fdw opens its own transactions there,
  -- which inherit it) and bounded by the tenant's statement timeout.
  v_options := sextant_private.source_session_options(v_tenant.statement_timeout_ms);
  execute format('create server %I foreign data wrapper postgres_fdw options (host %L, port %L, dbname %L, '
                 'options %L, application_name %L, connect_timeout %L, updatable %L, truncatable %L, fetch_size %L%s%s)',
                 v_server, host, port::text, dbname, v_options, 'sextant', '10', 'false', 'false', '1000',
                 case when hostaddr is not null then format(', hostaddr %L', hostaddr) else '' end,
                 case when sslmode is not null then format(', sslmode %L', sslmode) else '' end);
  execute format('comment on server %I is %L', v_server, format('source %s of tenant %s', name, slug));
  -- Owned by sextant_owner whoever adds it: the scheduled refresh (run as sextant_owner) keeps
  -- its options current. An admin that may not hand it over keeps it (refreshes then leave the
  -- options alone).
  if current_user::text <> 'sextant_owner' then
    begin
      execute format('alter server %I owner to sextant_owner', v_server);
    exception when insufficient_privilege then
      null;
    end;
  end if;
  execute format('revoke all on foreign server %I from public', v_server);
  execute format('grant usage on foreign server %I to %I', v_server, v_role);
  begin
    execute format('create user mapping for %I server %I options (user %L, password %L)', v_role, v_server, remote_user, password);
  exception when others then
    -- The failed statement's text (the password in it) would be the error's context: a new
    -- error replaces it.
    raise exception 'the user mapping of source % could not be created', name using errcode = 'SX400';
  end;

  insert into sextant.sources (tenant_slug, name, server_name, host, port, dbname, remote_user, sslmode, remote_schemas)
  values (slug, name, v_server, host, port, dbname, remote_user, sslmode, remote_schemas);
  return sextant_private.refresh_source(slug, name, true);
end
$$;
comment on function sextant_private.add_source(text, text, text, text, integer, text, text, text, text, text[]) is
  E'Creates a source (foreign server, user mapping for the tenant''s remote role) and imports its schemas.';
revoke all on function sextant_private.add_source(text, text, text, text, integer, text, text, text, text, text[]) from public;

-- Removes a source: its views, hidden schemas, local schemas, mapping and server.
create or replace function sextant_private.remove_source(slug text, name text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_src sextant.sources;
  v_remote text;
  v_local text;
begin
  select * into v_src from sextant.sources as s
  where s.tenant_slug = remove_source.slug and s.name = remove_source.name
  for update;
  if v_src.name is null then
    raise exception 'tenant % has no source %', slug, name using errcode = 'SX404';
  end if;
  foreach v_remote in array v_src.remote_schemas loop
    v_local := name || '_' || v_remote;
    execute format('drop schema if exists %I cascade', sextant_private.source_hidden_schema(slug, name, v_remote));
    execute format('drop schema if exists %I cascade', v_local);
    delete from sextant.tenant_schemas as s where s.schema_name = v_local and s.tenant_slug = slug;
  end loop;
  execute format('drop schema if exists %I cascade', sextant_private.source_hidden_schema(slug, name, null));
  -- Dropping the server drops its user mapping (and with it the password).
  execute format('drop server if exists %I cascade', v_src.server_name);
  delete from sextant.sources as s where s.tenant_slug = slug and s.name = name;
end
$$;
comment on function sextant_private.remove_source(text, text) is
  E'Drops a source, its imported tables, its server and its user mapping.';
revoke all on function sextant_private.remove_source(text, text) from public;

-- The scheduled refresh (worker task refresh_sources): every source whose last refresh is
-- older than `older_than`, one subtransaction each, so one failing server does not stop the
-- others. Returns how many were refreshed and how many failed.
create or replace function sextant_private.refresh_due_sources(older_than interval default interval '1 hour',
                                                               out refreshed integer, out failed integer)
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_src record;
  v_row sextant.sources;
begin
  refreshed := 0;
  failed := 0;
  for v_src in
    select s.tenant_slug, s.name from sextant.sources as s
    where s.last_refreshed_at is null or s.last_refreshed_at < now() - older_than
    order by s.last_refreshed_at nulls first
  loop
    v_row := sextant_private.refresh_source(v_src.tenant_slug, v_src.name, false);
    if v_row.status = 'ok' then refreshed := refreshed + 1; else failed := failed + 1; end if;
  end loop;
end
$$;
comment on function sextant_private.refresh_due_sources(interval) is
  E'Refreshes every source not refreshed for `older_than`; failures are recorded per source.';
revoke all on function sextant_private.refresh_due_sources(interval) from public;

-- ---------------------------------------------------------------------------------------
-- The operator's allow list: hosts a tenant's admins may add sources on (`sextant source
-- allow|disallow|hosts`). `hostaddr` is the address the CLI's check passed (src/sources/);
-- a tenant admin's source connects to it. Admin rights needed (it creates the tenant's
-- __remote role and lets sextant_owner create foreign servers).
create or replace function sextant_private.allow_source_host(slug text, host text, port integer, hostaddr text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
begin
  if not exists (select from sextant.tenants as t where t.slug = allow_source_host.slug) then
    raise exception 'tenant % does not exist', slug using errcode = 'SX404';
  end if;
  if not exists (select from pg_catalog.pg_extension where extname = 'postgres_fdw') then
    raise exception 'sources need the postgres_fdw extension, which is not installed'
      using errcode = 'SX400', hint = 'As a superuser: create extension postgres_fdw schema sextant_private.';
  end if;
  if host is null or lower(host) !~ '^([a-z0-9.-]+|[0-9a-f:.]+)$' or length(host) > 253 then
    raise exception 'the host is not a host name or an address' using errcode = 'SX400';
  end if;
  if port is null or port not between 1 and 65535 then
    raise exception 'the port must be between 1 and 65535' using errcode = 'SX400';
  end if;
  if hostaddr is null or lower(hostaddr) !~ '^[0-9a-f:.]+$' then
    raise exception 'the host address is not an IP address' using errcode = 'SX400';
  end if;
  -- A second wall behind the CLI's check: no PostgreSQL lives at a cloud metadata address.
  if hostaddr::inet <<= '169.254.0.0/16'::inet or hostaddr::inet <<= 'fe80::/10'::inet
     or hostaddr::inet <<= '0.0.0.0/8'::inet or hostaddr::inet = '::'::inet or hostaddr::inet <<= 'fd00:ec2::/32'::inet then
    raise exception 'host % is at a link-local, metadata or unspecified address (%)', host, hostaddr using errcode = 'SX403';
  end if;
  perform sextant_private.install_source_role(slug);
  execute 'grant usage on foreign data wrapper postgres_fdw to sextant_owner';
  insert into sextant_private.source_hosts (tenant_slug, host, port, hostaddr)
  values (slug, lower(host), port, lower(hostaddr))
  on conflict on constraint source_hosts_pkey do update set hostaddr = excluded.hostaddr, added_at = now();
end
$$;
comment on function sextant_private.allow_source_host(text, text, integer, text) is
  E'Lets a tenant''s admins add sources on host:port (connected at hostaddr, the address the operator''s check passed).';
revoke all on function sextant_private.allow_source_host(text, text, integer, text) from public;

create or replace function sextant_private.disallow_source_host(slug text, host text, port integer)
returns boolean
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  with gone as (
    delete from sextant_private.source_hosts as h
    where h.tenant_slug = disallow_source_host.slug and h.host = lower(disallow_source_host.host) and h.port = disallow_source_host.port
    returning 1)
  select exists (select from gone);
$$;
comment on function sextant_private.disallow_source_host(text, text, integer) is
  E'Removes a host from a tenant''s allow list (sources already added stay until removed).';
revoke all on function sextant_private.disallow_source_host(text, text, integer) from public;

grant execute on function sextant_private.add_source(text, text, text, text, integer, text, text, text, text, text[]) to sextant_owner;
grant execute on function sextant_private.refresh_source(text, text, boolean) to sextant_owner;
grant execute on function sextant_private.remove_source(text, text) to sextant_owner;
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

set role sextant_owner;

-- ---------------------------------------------------------------------------------------
-- Tenant admins' sources (GraphQL addSource/refreshSource/removeSource, psql): only on a host
-- and port their operator allowed for their tenant, connected at the address the operator's
-- check passed. SECURITY DEFINER (tenant roles cannot create servers or mappings); the caller's
-- tenant and level come from its role (caller_admin_tenant_for, sql/console.sql, the same check as
-- sextant.current_tenant()). The password goes into the user mapping only: no table, return
-- value, audit row or error holds it.
drop function if exists sextant_private.caller_source_admin(); -- was a copy of caller_admin_tenant_for

create or replace function sextant.add_source(
  name text, host text, port integer, dbname text, remote_user text, password text, remote_schemas text[],
  sslmode text default null, refresh_every_minutes integer default 60)
returns sextant.sources
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_tenant text := sextant_private.caller_admin_tenant_for('manage sources');
  v_addr text;
  v_row sextant.sources;
begin
  -- Each source is a server, schemas and remote connections in every session that reads it.
  if (select count(*) from sextant.sources as s where s.tenant_slug = v_tenant) >= 20 then
    raise exception 'your tenant has 20 sources, the most tenant admins may add'
      using errcode = 'SX429', hint = 'Remove one, or ask an operator (`sextant source add`).';
  end if;
  if refresh_every_minutes is not null and refresh_every_minutes not between 5 and 43200 then
    raise exception 'refresh_every_minutes must be between 5 and 43200 (30 days), or null for on demand only' using errcode = 'SX400';
  end if;
  select h.hostaddr into v_addr from sextant_private.source_hosts as h
  where h.tenant_slug = v_tenant and h.host = lower(add_source.host) and h.port = coalesce(add_source.port, 5432);
  if v_addr is null then
    raise exception 'host %:% is not on your operator''s allow list for sources', left(coalesce(add_source.host, 'null'), 253), coalesce(add_source.port, 5432)
      using errcode = 'SX403', hint = 'An operator allows a host for your tenant with `sextant source allow`.';
  end if;
  perform sextant_private.add_source(v_tenant, name, lower(host), v_addr, coalesce(port, 5432), dbname, remote_user, password, sslmode, remote_schemas);
  update sextant.sources as s
     set added_by = 'tenant admin', refresh_every = make_interval(mins => refresh_every_minutes)
   where s.tenant_slug = v_tenant and s.name = add_source.name
  returning * into v_row;
  return v_row;
end
$$;
comment on function sextant.add_source(text, text, integer, text, text, text, text[], text, integer) is
  E'Adds a PostgreSQL database as a source of your tenant (tenant admins): its remote schemas become '
  '<name>_<schema>, read-only. The host and port must be on your operator''s allow list. The password is '
  'kept where no tenant role can read it and never returned.';
revoke all on function sextant.add_source(text, text, integer, text, text, text, text[], text, integer) from public;
grant execute on function sextant.add_source(text, text, integer, text, text, text, text[], text, integer) to sextant_tenant_reader;

create or replace function sextant.refresh_source(name text)
returns sextant.sources
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_tenant text := sextant_private.caller_admin_tenant_for('manage sources');
begin
  if not exists (select from sextant.sources as s where s.tenant_slug = v_tenant and s.name = refresh_source.name) then
    raise exception 'your tenant has no source %', left(coalesce(name, 'null'), 63) using errcode = 'SX404';
  end if;
  return sextant_private.refresh_source(v_tenant, name, false);
end
$$;
comment on function sextant.refresh_source(text) is
  E'Re-imports one of your tenant''s sources now (tenant admins); a failure is recorded on it (status, last_error).';
revoke all on function sextant.refresh_source(text) from public;
grant execute on function sextant.refresh_source(text) to sextant_tenant_reader;

create or replace function sextant.remove_source(name text)
returns boolean
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_tenant text := sextant_private.caller_admin_tenant_for('manage sources');
  v_by text;
begin
  select s.added_by into v_by from sextant.sources as s where s.tenant_slug = v_tenant and s.name = remove_source.name;
  if v_by is null then
    raise exception 'your tenant has no source %', left(coalesce(name, 'null'), 63) using errcode = 'SX404';
  end if;
  if v_by <> 'tenant admin' then
    raise exception 'source % was added by an operator; only an operator removes it', name
      using errcode = 'SX403', hint = 'sextant source remove';
  end if;
  perform sextant_private.remove_source(v_tenant, name);
  return true;
end
$$;
comment on function sextant.remove_source(text) is
  E'Removes a source your tenant''s admins added: its tables, schemas and stored credentials (tenant admins).';
revoke all on function sextant.remove_source(text) from public;
grant execute on function sextant.remove_source(text) to sextant_tenant_reader;

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

-- ---------------------------------------------------------------------------------------
-- The worker's schedule (granted to sextant_worker only; these cross tenants by design): the
-- minute tick asks which sources are due and queues one job each; a job refreshes one source
-- if it is still due (a job queued twice refreshes once). Failures are recorded on the source.
create or replace function sextant_private.due_sources()
returns table (tenant_slug text, name text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.tenant_slug, s.name from sextant.sources as s
  where s.refresh_every is not null
    and coalesce(greatest(s.last_attempt_at, s.last_refreshed_at), '-infinity') < now() - s.refresh_every
  order by coalesce(greatest(s.last_attempt_at, s.last_refreshed_at), '-infinity')
  limit 100;
$$;
revoke all on function sextant_private.due_sources() from public;
grant execute on function sextant_private.due_sources() to sextant_worker;

create or replace function sextant_private.refresh_due_source(slug text, name text)
returns text
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_row sextant.sources;
begin
  if not exists (select from sextant.sources as s
                 where s.tenant_slug = slug and s.name = name and s.refresh_every is not null
                   and coalesce(greatest(s.last_attempt_at, s.last_refreshed_at), '-infinity') < now() - s.refresh_every) then
    return 'not due';
  end if;
  v_row := sextant_private.refresh_source(slug, name, false);
  return v_row.status;
end
$$;
revoke all on function sextant_private.refresh_due_source(text, text) from public;
grant execute on function sextant_private.refresh_due_source(text, text) to sextant_worker;

reset role;
