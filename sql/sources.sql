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

-- Re-imports a source: the remote tables that exist now, with their columns now, replace the
-- previous ones (new, changed and dropped tables follow). With strict, a failure raises SX502
-- naming the source; without, it is recorded (status 'failed', last_error) and the previous
-- tables stay. Admin rights needed (it changes roles and owners).
create or replace function sextant_private.refresh_source(slug text, name text, strict boolean default false)
returns sextant.sources
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_variable
declare
  v_src sextant.sources;
  v_role text := 'sextant_t_' || slug || '__remote';
  v_meta text := sextant_private.source_hidden_schema(slug, name, null);
  v_remote text;
  v_hidden text;
  v_hiddens text[] := '{}';
  v_local text;
  v_prev_role text := current_setting('role');
  v_version text;
  v_fact record;
  v_facts jsonb := '{}';
  v_count integer := 0;
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

  begin
    -- Dropping a hidden schema drops its foreign tables and, through them, the views.
    foreach v_remote in array v_src.remote_schemas loop
      v_hidden := sextant_private.source_hidden_schema(slug, name, v_remote);
      v_hiddens := v_hiddens || v_hidden;
      v_local := name || '_' || v_remote;
      execute format('drop schema if exists %I cascade', v_hidden);
      execute format('create schema %I authorization %I', v_hidden, v_role);
      perform sextant_private.map_schema(slug, v_local);
      -- Not a schema the tenant provisioned: teardown_schema and the TTL cleanup leave it alone.
      update sextant.tenant_schemas as s set provisioned = false, expires_at = null where s.schema_name = v_local;
      execute format('grant usage, create on schema %I to %I', v_local, v_role);
    end loop;
    execute format('drop schema if exists %I cascade', v_meta);
    execute format('create schema %I authorization %I', v_meta, v_role);

    -- Everything that reaches the remote runs as the mapped role, the only one with a mapping.
    perform set_config('role', v_role, true);
    -- The version, and the first connection: a wrong host or password fails here.
    execute format('create foreign table %I.settings (name text, setting text) server %I '
                   'options (schema_name %L, table_name %L)', v_meta, v_src.server_name, 'pg_catalog', 'pg_settings');
    execute format('select setting from %I.settings where name = %L', v_meta, 'server_version') into v_version;
    -- The remote catalog, for comments, keys and row estimates: joins of these are sent to
    -- the remote server as one query. Its text is stored and shown as data, never run.
    execute format('create foreign table %I.namespaces (oid oid, nspname name) server %I options (schema_name %L, table_name %L)',
                   v_meta, v_src.server_name, 'pg_catalog', 'pg_namespace');
    execute format('create foreign table %I.classes (oid oid, relname name, relnamespace oid, relkind "char", reltuples real) server %I options (schema_name %L, table_name %L)',
                   v_meta, v_src.server_name, 'pg_catalog', 'pg_class');
    execute format('create foreign table %I.descriptions (objoid oid, classoid oid, objsubid integer, description text) server %I options (schema_name %L, table_name %L)',
                   v_meta, v_src.server_name, 'pg_catalog', 'pg_description');
    execute format('create foreign table %I.attributes (attrelid oid, attnum smallint, attname name) server %I options (schema_name %L, table_name %L)',
                   v_meta, v_src.server_name, 'pg_catalog', 'pg_attribute');
    execute format('create foreign table %I.constraints (conrelid oid, contype "char", conkey smallint[]) server %I options (schema_name %L, table_name %L)',
                   v_meta, v_src.server_name, 'pg_catalog', 'pg_constraint');

    for i in 1 .. cardinality(v_src.remote_schemas) loop
      v_remote := v_src.remote_schemas[i];
      v_hidden := v_hiddens[i];
      v_local := name || '_' || v_remote;
      execute format('import foreign schema %I from server %I into %I', v_remote, v_src.server_name, v_hidden);
      for v_table in
        select c.relname::text as relname
        from pg_catalog.pg_class as c
        where c.relnamespace = v_hidden::regnamespace and c.relkind = 'f'
        order by c.relname
      loop
        -- A plain view (not security_invoker): it reads the foreign table as its owner.
        execute format('create view %I.%I as select * from %I.%I', v_local, v_table.relname, v_hidden, v_table.relname);
        execute format('comment on view %I.%I is %L', v_local, v_table.relname,
                       format('%s.%s of source %s', v_remote, v_table.relname, name));
        -- Local statistics (sampled remotely) help the planner; a table that cannot be sampled
        -- within the remote statement timeout (a slow remote view) keeps none.
        begin
          execute format('analyze %I.%I', v_hidden, v_table.relname);
        exception when query_canceled or sqlclient_unable_to_establish_sqlconnection or fdw_error then
          null;
        end;
        v_count := v_count + 1;
      end loop;

      -- Table facts (1259 is pg_class's OID on every PostgreSQL): comment, estimate, key.
      for v_fact in execute format($q$
          select c.relname::text as relname, left(d.description, 2000) as description,
                 case when c.reltuples >= 0 then c.reltuples::bigint end as estimated_rows,
                 (select array_agg(a.attname::text order by a.attnum)
                    from %1$I.constraints as k
                    join %1$I.attributes as a on a.attrelid = k.conrelid and a.attnum = any (k.conkey)
                   where k.conrelid = c.oid and k.contype = 'p') as primary_key
          from %1$I.classes as c
          join %1$I.namespaces as n on n.oid = c.relnamespace
          left join %1$I.descriptions as d on d.objoid = c.oid and d.classoid = 1259 and d.objsubid = 0
          where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f')$q$, v_meta) using v_remote
      loop
        continue when to_regclass(format('%I.%I', v_local, v_fact.relname)) is null;
        v_facts := v_facts || jsonb_build_object(v_remote || '.' || v_fact.relname, to_jsonb(v_fact));
        execute format('comment on view %I.%I is %L', v_local, v_fact.relname,
                       concat_ws(' ', v_fact.description || E'\n',
                                 format('(%s.%s of source %s%s)', v_remote, v_fact.relname, name,
                                        '; primary key ' || array_to_string(v_fact.primary_key, ', '))));
      end loop;
      -- Column comments.
      for v_fact in execute format($q$
          select c.relname::text as relname, a.attname::text as attname, left(d.description, 2000) as description
          from %1$I.classes as c
          join %1$I.namespaces as n on n.oid = c.relnamespace
          join %1$I.descriptions as d on d.objoid = c.oid and d.classoid = 1259 and d.objsubid > 0
          join %1$I.attributes as a on a.attrelid = c.oid and a.attnum = d.objsubid
          where n.nspname = $1$q$, v_meta) using v_remote
      loop
        continue when not exists (
          select from pg_catalog.pg_attribute as a
          where a.attrelid = to_regclass(format('%I.%I', v_local, v_fact.relname)) and a.attname = v_fact.attname and not a.attisdropped);
        execute format('comment on column %I.%I.%I is %L', v_local, v_fact.relname, v_fact.attname, v_fact.description);
      end loop;
    end loop;
    perform set_config('role', v_prev_role, true);

    delete from sextant.source_tables as st where st.tenant_slug = slug and st.source_name = name;
    foreach v_remote in array v_src.remote_schemas loop
      v_hidden := sextant_private.source_hidden_schema(slug, name, v_remote);
      insert into sextant.source_tables (tenant_slug, source_name, remote_schema, table_name, local_schema, column_count,
                                         description, estimated_rows, primary_key)
      select slug, name, v_remote, c.relname, name || '_' || v_remote,
             (select count(*) from pg_catalog.pg_attribute as a
               where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
             v_facts -> (v_remote || '.' || c.relname) ->> 'description',
             (v_facts -> (v_remote || '.' || c.relname) ->> 'estimated_rows')::bigint,
             array(select jsonb_array_elements_text(coalesce(nullif(v_facts -> (v_remote || '.' || c.relname) -> 'primary_key', 'null'), '[]')))
      from pg_catalog.pg_class as c
      where c.relnamespace = v_hidden::regnamespace and c.relkind = 'f';
    end loop;
    foreach v_remote in array v_src.remote_schemas loop
      execute format('revoke usage, create on schema %I from %I', name || '_' || v_remote, v_role);
    end loop;
    -- SELECT on the views for the tenant's reader, minus its allow/deny lists.
    perform sextant_private.apply_table_filters(slug);
  exception when others then
    get stacked diagnostics v_message = message_text;
    if strict then
      raise exception 'source % could not be refreshed: %', name, v_message
        using errcode = 'SX502', hint = 'Check the host, port, database, user, password and schemas of the source, and that the server is up.';
    end if;
    update sextant.sources as s set status = 'failed', last_error = v_message
    where s.tenant_slug = slug and s.name = name
    returning * into v_src;
    return v_src;
  end;

  update sextant.sources as s
     set status = 'ok', last_error = null, server_version = v_version, last_refreshed_at = now(), table_count = v_count
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

  if to_regrole(v_role) is null then
    -- NOLOGIN, NOINHERIT, granted to no role: only an admin's function ever acts as it.
    execute format('create role %I nologin noinherit', v_role);
  end if;
  -- The remote session: read-only by default (postgres_fdw opens its own transactions there,
  -- which inherit it) and bounded by the tenant's statement timeout.
  v_options := format('-c default_transaction_read_only=on -c statement_timeout=%s -c idle_in_transaction_session_timeout=%s',
                      v_tenant.statement_timeout_ms, greatest(v_tenant.statement_timeout_ms * 4, 60000));
  execute format('create server %I foreign data wrapper postgres_fdw options (host %L, port %L, dbname %L, '
                 'options %L, application_name %L, connect_timeout %L, updatable %L, truncatable %L, fetch_size %L%s%s)',
                 v_server, host, port::text, dbname, v_options, 'sextant', '10', 'false', 'false', '1000',
                 case when hostaddr is not null then format(', hostaddr %L', hostaddr) else '' end,
                 case when sslmode is not null then format(', sslmode %L', sslmode) else '' end);
  execute format('comment on server %I is %L', v_server, format('source %s of tenant %s', name, slug));
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
