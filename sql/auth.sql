-- Area: auth. API tokens (opaque, hashed) and what a verified credential resolves to.
-- Called by the CLI (`sextant token create|list|revoke`, admin connection) and by the server's
-- authenticator (authenticate_token, tenant_role).
-- Invariants:
--   * only sha256(token) is stored; the token text is returned once, at creation;
--   * a revoked or expired token never authenticates;
--   * the role a token resolves to is derived from its tenant and access level;
--   * access levels and their order are defined here once (access_levels, level_rank); every
--     function that needs a level calls require_level, and the TypeScript reads them, never
--     writes them again (tenant_role refuses any other level);
--   * a list's page is 1 to 1,000 rows, checked here once (require_max_results).

set role sextant_owner;

-- Levels, lowest first. Each is a role layered on the one before (sextant_t_<slug>, __analyst, __admin).
create or replace function sextant.access_levels()
returns text[]
language sql immutable
as $$ select array['viewer', 'analyst', 'admin'] $$;
comment on function sextant.access_levels() is E'@behavior -*\nAccess levels inside a tenant, lowest first.';

create or replace function sextant.level_rank(level text)
returns integer
language sql immutable
as $$ select array_position(sextant.access_levels(), level) $$;
comment on function sextant.level_rank(text) is E'@behavior -*\nA level''s place in access_levels() (1 = viewer), or null for anything else.';

-- The one level check of every function that needs more than viewer: SX403 naming what was
-- refused and which levels may do it. `action` is Sextant's own text, never a caller's.
create or replace function sextant.require_level(minimum text, action text)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_need integer := sextant.level_rank(minimum);
  v_held integer := sextant.level_rank(sextant.current_access_level());
begin
  if v_need is null then
    raise exception 'access level % is not one of %', coalesce(minimum, 'null'), array_to_string(sextant.access_levels(), ', ')
      using errcode = 'SX400';
  end if;
  if v_held is null or v_held < v_need then
    raise exception '% needs the % role of a tenant', action,
      (select string_agg(l, ' or ' order by o) from unnest(sextant.access_levels()) with ordinality as u(l, o) where o >= v_need)
      using errcode = 'SX403',
            hint = case minimum when 'admin' then 'Use a tenant admin''s token.' else format('Ask a tenant admin for a token at level %s or above.', minimum) end;
  end if;
end
$$;
comment on function sextant.require_level(text, text) is
  E'@behavior -*\nRaises SX403 unless the current role holds `minimum` or a higher level in its tenant.';

-- The one bound on a list's page (list_tables, list_dbt_models): SX400 unless 1 to 1,000 rows.
create or replace function sextant.require_max_results(max_results integer)
returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if max_results is null or max_results not between 1 and 1000 then
    raise exception 'max_results must be between 1 and 1000, got %', max_results using errcode = 'SX400';
  end if;
end
$$;
comment on function sextant.require_max_results(integer) is
  E'@behavior -*\nRaises SX400 unless max_results is between 1 and 1000 (the page size of every list).';

-- Tokens look like sxt_<8 hex prefix>_<64 hex secret>: the prefix finds the row, the hash
-- proves possession. gen_random_uuid() is core PostgreSQL (no extension needed).
create or replace function sextant_private.create_api_token(
  slug text, principal_name text, access_level text, expires_at timestamptz, tool_groups text[])
returns text
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_role text := sextant_private.tenant_role(slug, coalesce(access_level, 'viewer'));
  v_prefix text := substr(replace(gen_random_uuid()::text, '-', ''), 1, 8);
  v_token text := 'sxt_' || v_prefix || '_'
    || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
  v_principal uuid;
begin
  if principal_name is null or length(principal_name) not between 1 and 200 then
    raise exception 'principal name must be 1 to 200 characters' using errcode = 'SX400';
  end if;
  if expires_at is not null and expires_at <= now() then
    raise exception 'expiry % is in the past', expires_at using errcode = 'SX400';
  end if;
  insert into sextant.principals as p (tenant_slug, name, access_level)
  values (slug, principal_name, coalesce(access_level, 'viewer'))
  on conflict (tenant_slug, name) do update
    -- A principal's level is the highest any of its tokens carries.
    set access_level = case
      when sextant.level_rank(excluded.access_level) > sextant.level_rank(p.access_level)
      then excluded.access_level else p.access_level end
  returning id into v_principal;
  insert into sextant_private.api_tokens (principal_id, prefix, token_hash, access_level, expires_at, tool_groups)
  values (v_principal, v_prefix, sha256(convert_to(v_token, 'UTF8')), coalesce(access_level, 'viewer'),
          create_api_token.expires_at, create_api_token.tool_groups);
  perform v_role;
  return v_token;
end
$$;
comment on function sextant_private.create_api_token(text, text, text, timestamptz, text[]) is
  E'Creates a principal (if new) and an API token for it, for the given MCP tool groups (null: all); returns the token text, shown once.';
revoke all on function sextant_private.create_api_token(text, text, text, timestamptz, text[]) from public;

-- The four-argument form (no tool groups: all) stays for its callers.
create or replace function sextant_private.create_api_token(
  slug text, principal_name text, access_level text, expires_at timestamptz)
returns text
language sql volatile
set search_path = pg_catalog, pg_temp
return sextant_private.create_api_token(slug, principal_name, access_level, expires_at, null::text[]);
comment on function sextant_private.create_api_token(text, text, text, timestamptz) is
  E'Creates a principal (if new) and an API token for it, for all tool groups; returns the token text, shown once.';
revoke all on function sextant_private.create_api_token(text, text, text, timestamptz) from public;

-- SECURITY DEFINER: the authenticator must resolve tokens without being able to read the
-- token table. Returns no row for an unknown, revoked or expired token.
create or replace function sextant_private.authenticate_token(token text)
returns setof sextant_private.token_principal
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_prefix text := substring(token from '^sxt_([0-9a-f]{8})_[0-9a-f]{64}$');
  v_result sextant_private.token_principal;
begin
  if v_prefix is null then
    return;
  end if;
  select t.id, p.id, p.name, p.tenant_slug, t.access_level,
         sextant_private.tenant_role(p.tenant_slug, t.access_level),
         t.expires_at, t.tool_groups
    into v_result
  from sextant_private.api_tokens as t
  join sextant.principals as p on p.id = t.principal_id
  where t.prefix = v_prefix
    and t.token_hash = sha256(convert_to(token, 'UTF8'))
    and t.revoked_at is null
    and (t.expires_at is null or t.expires_at > now());
  if not found then
    return;
  end if;
  -- At most one write a minute per token: bookkeeping must not cost a write per request.
  update sextant_private.api_tokens
  set last_used_at = now()
  where id = v_result.token_id
    and (last_used_at is null or last_used_at < now() - interval '1 minute');
  return next v_result;
end
$$;
comment on function sextant_private.authenticate_token(text) is
  E'Resolves an API token to its principal, tenant and database role; nothing if invalid.';
revoke all on function sextant_private.authenticate_token(text) from public;
grant execute on function sextant_private.authenticate_token(text) to sextant_authenticator;

create or replace view sextant_private.api_token_list as
  select t.id, p.tenant_slug, p.name as principal_name, t.prefix, t.access_level,
         t.created_at, t.expires_at, t.last_used_at, t.revoked_at,
         case
           when t.revoked_at is not null then 'revoked'
           when t.expires_at is not null and t.expires_at <= now() then 'expired'
           else 'active'
         end as status,
         t.tool_groups
  from sextant_private.api_tokens as t
  join sextant.principals as p on p.id = t.principal_id;
comment on view sextant_private.api_token_list is E'API tokens without their hashes, for admins.';
revoke all on sextant_private.api_token_list from public;

create or replace function sextant_private.revoke_api_token(id_or_prefix text)
returns sextant_private.api_token_list
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
  v_row sextant_private.api_token_list;
begin
  update sextant_private.api_tokens as t
  set revoked_at = coalesce(t.revoked_at, now())
  where t.id::text = id_or_prefix or t.prefix = id_or_prefix
  returning t.id into v_id;
  if v_id is null then
    raise exception 'no token has id or prefix %', id_or_prefix
      using errcode = 'SX404', hint = 'Run `sextant token list` to see token ids and prefixes.';
  end if;
  select * into v_row from sextant_private.api_token_list as l where l.id = v_id;
  return v_row;
end
$$;
comment on function sextant_private.revoke_api_token(text) is
  E'Revokes a token by id or prefix; revoking twice keeps the first revocation time.';
revoke all on function sextant_private.revoke_api_token(text) from public;

reset role;
