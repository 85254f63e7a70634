-- Area: sources, adding and removing them (sql/sources.sql has the invariants). Operators:
-- `sextant source add|remove|allow|disallow` (src/sources/, the admin connection); tenant
-- admins: sextant.add_source / remove_source / refresh_source (GraphQL, psql), only on hosts
-- their operator allowed, connected at the address that check passed.
-- Invariants: the password goes into the user mapping only (no table, return value, audit row
-- or error holds it); a failed add leaves no server, mapping or schema behind.

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
  perform sextant_private.require_postgres_fdw();
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
  v_src := sextant_private.lock_source(slug, name);
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
  perform sextant_private.require_postgres_fdw();
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
grant execute on function sextant_private.remove_source(text, text) to sextant_owner;

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

reset role;
