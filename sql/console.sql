-- Area: web console (/console, src/console/). Sessions of signed-in people, and the few
-- functions the console needs that no other door had: tenant admins managing their tenant's
-- API tokens, and a person's own query history. Called by the server's authenticator
-- (console_session_*) and, as the person's own tenant role, by the console, GraphQL and psql.
-- Invariants:
--   * a session is found only by sha256 of its cookie; ended, idle or too old sessions never are;
--   * a session's tenant and level come from user_tenants at every use (no copy to go stale);
--   * token functions act only on the caller's tenant and only for its admins;
--   * the token text is returned once, never stored (sextant_private.create_api_token).

set role sextant_owner;

-- A new session for a person who just proved their password (or upstream sign-in).
create or replace function sextant_private.console_session_start(id_hash bytea, user_id bigint, csrf text)
returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  -- Old rows go as new ones come: ended or unused for a day.
  delete from sextant_private.console_sessions as s
  where s.ended_at < now() - interval '1 day' or s.last_seen_at < now() - interval '1 day';
  insert into sextant_private.console_sessions (id_hash, user_id, csrf)
  values (console_session_start.id_hash, console_session_start.user_id, console_session_start.csrf);
$$;
revoke all on function sextant_private.console_session_start(bytea, bigint, text) from public;
grant execute on function sextant_private.console_session_start(bytea, bigint, text) to sextant_authenticator;

-- The session behind a cookie, if it is still alive (not ended, used within idle_seconds,
-- younger than max_seconds, person not disabled), with the picked tenant and the person's
-- level there now (null when they lost it), and every tenant they may pick. Marks it used.
create or replace function sextant_private.console_session_get(id_hash bytea, idle_seconds integer, max_seconds integer)
returns table (user_id bigint, email text, display_name text, tenant text, access_level text, csrf text,
               tenants jsonb, expires_at timestamptz)
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v sextant_private.console_sessions;
begin
  select * into v from sextant_private.console_sessions as s where s.id_hash = console_session_get.id_hash;
  if v.id_hash is null or v.ended_at is not null
     or v.last_seen_at < now() - make_interval(secs => idle_seconds)
     or v.created_at < now() - make_interval(secs => max_seconds) then
    return;
  end if;
  -- One write a few seconds at most: the idle clock needs no finer grain.
  if v.last_seen_at < now() - interval '5 seconds' then
    update sextant_private.console_sessions as s set last_seen_at = now() where s.id_hash = v.id_hash;
  end if;
  return query
    select u.id, u.email, u.display_name, v.tenant_slug, ut.access_level, v.csrf,
           coalesce((select jsonb_agg(jsonb_build_object('tenant', x.tenant_slug, 'name', t.display_name, 'access_level', x.access_level)
                                      order by x.tenant_slug)
                       from sextant_private.user_tenants as x join sextant.tenants as t on t.slug = x.tenant_slug
                      where x.user_id = u.id), '[]'),
           least(now() + make_interval(secs => idle_seconds), v.created_at + make_interval(secs => max_seconds))
    from sextant_private.users as u
    left join sextant_private.user_tenants as ut on ut.user_id = u.id and ut.tenant_slug = v.tenant_slug
    where u.id = v.user_id and u.disabled_at is null;
end
$$;
revoke all on function sextant_private.console_session_get(bytea, integer, integer) from public;
grant execute on function sextant_private.console_session_get(bytea, integer, integer) to sextant_authenticator;

-- Picks the session's tenant: only one the person belongs to (SX403 otherwise).
create or replace function sextant_private.console_session_pick(id_hash bytea, tenant text)
returns text
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_level text;
begin
  select ut.access_level into v_level
  from sextant_private.console_sessions as s
  join sextant_private.user_tenants as ut on ut.user_id = s.user_id and ut.tenant_slug = console_session_pick.tenant
  where s.id_hash = console_session_pick.id_hash and s.ended_at is null;
  if v_level is null then
    raise exception 'you do not belong to tenant %', left(tenant, 63) using errcode = 'SX403';
  end if;
  update sextant_private.console_sessions as s set tenant_slug = console_session_pick.tenant
  where s.id_hash = console_session_pick.id_hash;
  return v_level;
end
$$;
revoke all on function sextant_private.console_session_pick(bytea, text) from public;
grant execute on function sextant_private.console_session_pick(bytea, text) to sextant_authenticator;

create or replace function sextant_private.console_session_end(id_hash bytea)
returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  update sextant_private.console_sessions as s set ended_at = coalesce(s.ended_at, now())
  where s.id_hash = console_session_end.id_hash;
$$;
revoke all on function sextant_private.console_session_end(bytea) from public;
grant execute on function sextant_private.console_session_end(bytea) to sextant_authenticator;

-- Tenant admins and their tenant's API tokens (the CLI's functions, narrowed to the caller's
-- tenant). SECURITY DEFINER, since tenant roles cannot read the token table; inside such a
-- function current_user is the owner, so the caller is the `role` setting the server sets for
-- every call (session_user for a psql login, whose setting is 'none') — the same role
-- sextant.current_tenant() reads outside, checked the same way.
create or replace function sextant_private.caller_admin_tenant()
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_role text := nullif(current_setting('role'), 'none');
  v_tenant text;
begin
  v_role := coalesce(v_role, session_user::text);
  select case when count(*) = 1 then min(substr(r.rolname, 11)) end into v_tenant
  from pg_catalog.pg_auth_members as m
  join pg_catalog.pg_roles as r on r.oid = m.member
  where m.roleid = 'sextant_tenant_reader'::regrole
    and r.rolname like 'sextant\_t\_%'
    and pg_catalog.pg_has_role(v_role, r.oid, 'USAGE')
    and not exists (select from pg_catalog.pg_roles as s where s.rolname = v_role and s.rolsuper);
  if v_tenant is null or pg_catalog.to_regrole('sextant_t_' || v_tenant || '__admin') is null
     or not pg_catalog.pg_has_role(v_role, ('sextant_t_' || v_tenant || '__admin')::regrole, 'USAGE') then
    raise exception 'only a tenant admin may manage API tokens' using errcode = 'SX403';
  end if;
  return v_tenant;
end
$$;
revoke all on function sextant_private.caller_admin_tenant() from public;

create or replace function sextant.create_api_token(name text, access_level text default 'viewer', expires_in_days integer default null)
returns text
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant text := sextant_private.caller_admin_tenant();
begin
  if access_level is null or access_level not in ('viewer', 'analyst', 'admin') then
    raise exception 'access_level must be viewer, analyst or admin' using errcode = 'SX400';
  end if;
  if expires_in_days is not null and expires_in_days not between 1 and 3650 then
    raise exception 'expires_in_days must be 1 to 3650' using errcode = 'SX400';
  end if;
  return sextant_private.create_api_token(v_tenant, btrim(name), access_level,
    case when expires_in_days is null then null else now() + make_interval(days => expires_in_days) end);
end
$$;
comment on function sextant.create_api_token(text, text, integer) is
  E'Creates an API token in your tenant for a person or agent (tenant admins); returns the token, shown only this once.';
revoke all on function sextant.create_api_token(text, text, integer) from public;
grant execute on function sextant.create_api_token(text, text, integer) to sextant_tenant_reader;

create or replace function sextant.list_api_tokens()
returns table (id uuid, principal_name text, prefix text, access_level text, status text,
               created_at timestamptz, expires_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select l.id, l.principal_name, l.prefix, l.access_level, l.status, l.created_at, l.expires_at, l.last_used_at, l.revoked_at
  from sextant_private.api_token_list as l
  where l.tenant_slug = sextant_private.caller_admin_tenant()
  order by l.created_at desc
  limit 1000;
$$;
comment on function sextant.list_api_tokens() is
  E'Your tenant''s API tokens, newest first, without the tokens themselves (tenant admins).';
revoke all on function sextant.list_api_tokens() from public;
grant execute on function sextant.list_api_tokens() to sextant_tenant_reader;

create or replace function sextant.revoke_api_token(token_prefix text)
returns table (prefix text, principal_name text, status text, revoked_at timestamptz)
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant text := sextant_private.caller_admin_tenant();
  v_row sextant_private.api_token_list;
begin
  -- Another tenant's prefix is "no such token", the same answer as a prefix that does not exist.
  if not exists (select from sextant_private.api_token_list as l where l.prefix = revoke_api_token.token_prefix and l.tenant_slug = v_tenant) then
    raise exception 'no token with prefix % in your tenant', left(revoke_api_token.token_prefix, 16) using errcode = 'SX404';
  end if;
  v_row := sextant_private.revoke_api_token(revoke_api_token.token_prefix);
  return query select v_row.prefix, v_row.principal_name, v_row.status, v_row.revoked_at;
end
$$;
comment on function sextant.revoke_api_token(text) is
  E'Revokes one of your tenant''s API tokens by its prefix, at once (tenant admins).';
revoke all on function sextant.revoke_api_token(text) from public;
grant execute on function sextant.revoke_api_token(text) to sextant_tenant_reader;

-- A person's own calls, newest first, from the audit log (RLS: their own events; admins the
-- tenant's, narrowed here to their own too).
create or replace function sextant.my_query_history(max_results integer default 50, tool text default null)
returns table (at timestamptz, tool text, sql text, row_count bigint, duration_ms double precision, outcome text, error_code text)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select e.at, e.tool, e.sql, e.row_count::bigint, e.duration_ms::double precision, e.outcome, e.error_code
  from sextant.audit_events as e
  where e.tenant_slug = sextant.current_tenant() and e.principal = sextant.current_person()
    and (my_query_history.tool is null or e.tool = my_query_history.tool)
  order by e.at desc
  limit least(greatest(coalesce(max_results, 50), 1), 500);
$$;
comment on function sextant.my_query_history(integer, text) is
  E'Your own calls in this tenant (newest first, at most 500), from the audit log: when, which tool, the SQL, rows, outcome.';
grant execute on function sextant.my_query_history(integer, text) to sextant_tenant_reader;

-- The Admin page's read-only views of the caller's tenant (tenant admins; another tenant's rows
-- are never read: the tenant is the caller's, from caller_admin_tenant). SECURITY DEFINER, as
-- above: tenant roles cannot read people or rate-limit counters themselves.
-- caller_admin_tenant_for('<do what>'): the caller's tenant when it is that tenant's admin, else
-- SX403 'only a tenant admin may <do what>' (also the check of sql/sources.sql's tenant doors).
create or replace function sextant_private.caller_admin_tenant_for(what text)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return sextant_private.caller_admin_tenant();
exception when sqlstate 'SX403' then
  raise exception 'only a tenant admin may %', what using errcode = 'SX403';
end
$$;
revoke all on function sextant_private.caller_admin_tenant_for(text) from public;

-- What the tenant and its people used against the rate limits now (the windows the server's
-- rate limiter counts in sextant_private.rate_buckets: per person per minute and per hour, per
-- tenant per day, aligned to the epoch as src/audit/rateLimiter.ts aligns them).
create or replace function sextant.rate_limit_use()
returns table (scope text, principal text, window_name text, window_start timestamptz, used bigint, cap integer)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant text := sextant_private.caller_admin_tenant_for('see rate-limit use');
  v_epoch double precision := extract(epoch from now());
  v_day timestamptz := to_timestamp(floor(v_epoch / 86400) * 86400);
  v_hour timestamptz := to_timestamp(floor(v_epoch / 3600) * 3600);
  v_minute timestamptz := to_timestamp(floor(v_epoch / 60) * 60);
  v_person text := 'p:' || v_tenant || ':';
  v_t sextant.tenants;
begin
  select * into v_t from sextant.tenants as t where t.slug = v_tenant;
  return query
    select 'tenant'::text, null::text, 'day'::text, v_day,
           coalesce((select b.hits from sextant_private.rate_buckets as b where b.bucket = 't:' || v_tenant || ':day' and b.window_start = v_day), 0)::bigint,
           v_t.tenant_rate_per_day;
  return query
    select 'person'::text, w.who, w.window_name, w.window_start, w.hits::bigint,
           case w.window_name when 'minute' then v_t.rate_per_minute else v_t.rate_per_hour end
    from (
      select substr(b.bucket, length(v_person) + 1, length(b.bucket) - length(v_person) - length(x.suffix)) as who,
             x.window_name, b.window_start, b.hits
      from sextant_private.rate_buckets as b
      cross join lateral (values ('minute', ':minute', v_minute), ('hour', ':hour', v_hour)) as x (window_name, suffix, start)
      -- left()/right() rather than LIKE: a slug's or a name's _ and % are not patterns here.
      where left(b.bucket, length(v_person)) = v_person and right(b.bucket, length(x.suffix)) = x.suffix
        and b.window_start = x.start
    ) as w
    order by w.hits desc, w.who, w.window_name
    limit 500;
end
$$;
comment on function sextant.rate_limit_use() is
  E'What your tenant used of its daily call limit, and each person or agent of their per-minute and per-hour limits, in the current windows (tenant admins).';
revoke all on function sextant.rate_limit_use() from public;
grant execute on function sextant.rate_limit_use() to sextant_tenant_reader;

-- People who can sign in to the caller's tenant (OAuth and console accounts), with their level.
create or replace function sextant.list_people()
returns table (email text, display_name text, access_level text, disabled boolean, created_at timestamptz)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select u.email, u.display_name, ut.access_level, u.disabled_at is not null, u.created_at
  from sextant_private.user_tenants as ut
  join sextant_private.users as u on u.id = ut.user_id
  where ut.tenant_slug = sextant_private.caller_admin_tenant_for('see the people of the tenant')
  order by u.email
  limit 2000;
$$;
comment on function sextant.list_people() is
  E'The people who can sign in to your tenant, with their access level (tenant admins).';
revoke all on function sextant.list_people() from public;
grant execute on function sextant.list_people() to sextant_tenant_reader;

-- The schemas your tenant provisioned (provision_schema: named t_<tenant>__<name>; not the
-- schemas the operator made with the tenant), with when they expire (RLS on tenant_schemas:
-- your tenant's only). Anyone in the tenant may see them, as list_schemas does.
create or replace function sextant.list_provisioned_schemas()
returns table (schema_name text, created_at timestamptz, expires_at timestamptz, tables bigint, pipelines bigint)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select s.schema_name::text, s.created_at, s.expires_at,
         (select count(*) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
           where n.nspname = s.schema_name and c.relkind in ('r', 'p', 'v', 'm')),
         (select count(*) from sextant.pipelines as p where p.target_schema = s.schema_name)
  from sextant.tenant_schemas as s
  where s.provisioned and s.tenant_slug = sextant.current_tenant()
    and left(s.schema_name, length('t_' || s.tenant_slug || '__')) = 't_' || s.tenant_slug || '__'
  order by s.expires_at nulls last, s.schema_name
  limit 1000;
$$;
comment on function sextant.list_provisioned_schemas() is
  E'Schemas your tenant provisioned with provision_schema, with when they expire (null: never), their tables and the pipelines that write to them.';
grant execute on function sextant.list_provisioned_schemas() to sextant_tenant_reader;

reset role;
