-- Area: sources, re-importing them (sql/sources.sql has the invariants). Called by
-- `sextant source refresh|refresh-due` (admin connection), a tenant admin's
-- sextant.refresh_source (sql/sources_admin.sql) and the worker's minute tick (due_sources,
-- refresh_due_source: one job per due source).
-- Invariants: a refresh runs in a subtransaction, so a failing remote leaves the previous
-- tables and records the failure on the source; the remote session's options follow the
-- tenant's statement timeout at every refresh.

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
  v_src := sextant_private.lock_source(slug, name);
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
grant execute on function sextant_private.refresh_source(text, text, boolean) to sextant_owner;

set role sextant_owner;

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
