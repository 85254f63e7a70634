-- Area: OAuth 2.1 (src/oauth/): clients, codes, tokens, grants, signing keys. The server's
-- OAuth provider reaches its tables only through the SECURITY DEFINER functions below, granted
-- to sextant_authenticator; tenants see their grants through sextant.oauth_grants (RLS) and
-- revoke them with sextant.revoke_oauth_grant. Sign-in and people: sql/oauth_people.sql;
-- client metadata documents: sql/oauth_cimd.sql.
-- Invariants:
--   * codes, refresh tokens and client secrets are stored as SHA-256 hashes (the server hashes);
--   * a code is used once; a second exchange revokes the grant it produced (RFC 9700 4.2.4);
--   * a refresh token is used once; reuse revokes its grant (rotation with reuse detection);
--   * a grant never exceeds what the person holds in the tenant, now: membership and level are
--     re-checked whenever an access token is verified (cached until something changes);
--   * which grants a tenant role sees as "own" comes from sextant.current_person() (migration
--     000022), never straight from jwt.claims.*, which any session can set;
--   * a refused exchange or refresh changes nothing (except revoking a replayed grant);
--   * redirect URIs are https, loopback http or reverse-DNS app schemes only.

set role sextant_owner;

create or replace function sextant_private.oauth_register_client(client_id text, secret_hash text, metadata jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if length(metadata::text) > 16000 then
    raise exception 'the client registration is too large' using errcode = 'SX413';
  end if;
  if (select count(*) from sextant_private.oauth_clients) >= 100000 then
    raise exception 'too many registered clients' using errcode = 'SX429';
  end if;
  -- A second wall behind the server's check (src/oauth/redirectUri.ts, which parses with the
  -- parser the redirect is built with): https with a host, http on a loopback host, or a
  -- private-use scheme in reverse-DNS form (RFC 8252 7.1); no user info, no fragment.
  if jsonb_typeof(metadata -> 'redirect_uris') is distinct from 'array'
     or jsonb_array_length(metadata -> 'redirect_uris') not between 1 and 20
     or exists (select from jsonb_array_elements(metadata -> 'redirect_uris') as u
                where jsonb_typeof(u) <> 'string'
                   or length(u #>> '{}') > 2000
                   or not (u #>> '{}' ~* '^https://[^/?#@\s\\]+([/?][^#\s\\]*)?$'
                           or u #>> '{}' ~* '^http://(127\.0\.0\.1|\[::1\]|localhost)(:[0-9]{1,5})?([/?][^#@\s\\]*)?$'
                           or u #>> '{}' ~* '^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:[^#\s\\]*$')) then
    raise exception 'a redirect URI must use https, http on a loopback address, or an app''s reverse-DNS scheme'
      using errcode = 'SX400', hint = 'invalid_redirect_uri';
  end if;
  -- Bounded: clients registered a week ago and never used (no code, no grant) go, a few at a
  -- time; an MCP client registers again when its id is refused.
  delete from sextant_private.oauth_clients as c
  where c.client_id = any (array(
    select o.client_id from sextant_private.oauth_clients as o
    where o.created_at < now() - interval '7 days'
      and not exists (select from sextant_private.oauth_codes as k where k.client_id = o.client_id)
      and not exists (select from sextant.oauth_grants as g where g.client_id = o.client_id)
    limit 20));
  insert into sextant_private.oauth_clients (client_id, client_secret_hash, metadata)
  values (client_id, secret_hash, metadata);
end
$$;

create or replace function sextant_private.oauth_get_client(client_id text)
returns table (metadata jsonb, secret_hash text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select c.metadata, c.client_secret_hash from sextant_private.oauth_clients as c where c.client_id = oauth_get_client.client_id;
$$;

create or replace function sextant_private.oauth_level_rank(level text)
returns integer
language sql immutable
as $$ select sextant.level_rank(level) $$; -- the levels are defined once, in sql/auth.sql

-- The level a consent grants: the person's level in the tenant, or, when the app's scope names
-- levels (an app may ask for "viewer" only), the highest of those at or below it (viewer when
-- none is). oauth_create_code then checks it against the level held now.
create or replace function sextant_private.oauth_granted_level(held text, scopes text[])
returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select case
    when not exists (select from unnest(scopes) as s where sextant.level_rank(s) is not null) then held
    else coalesce((select s from unnest(scopes) as s
                    where sextant.level_rank(s) <= sextant.level_rank(held)
                    order by sextant.level_rank(s) desc limit 1), 'viewer')
  end
$$;

create or replace function sextant_private.oauth_create_code(code_hash text, client_id text, user_id bigint, tenant text,
  access_level text, redirect_uri text, code_challenge text, scopes text[], resource text, ttl_seconds integer)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_held text;
begin
  select ut.access_level into v_held from sextant_private.user_tenants as ut
  join sextant_private.users as u on u.id = ut.user_id and u.disabled_at is null
  where ut.user_id = oauth_create_code.user_id and ut.tenant_slug = tenant;
  if v_held is null then
    raise exception 'you are not a member of tenant %', tenant using errcode = 'SX403';
  end if;
  if sextant_private.oauth_level_rank(access_level) is null
     or sextant_private.oauth_level_rank(access_level) > sextant_private.oauth_level_rank(v_held) then
    raise exception 'you hold % in tenant %, not %', v_held, tenant, access_level using errcode = 'SX403';
  end if;
  insert into sextant_private.oauth_codes (code_hash, client_id, user_id, tenant_slug, access_level, redirect_uri,
                                           code_challenge, scopes, resource, expires_at)
  values (code_hash, client_id, user_id, tenant, access_level, redirect_uri, code_challenge, coalesce(scopes, '{}'), resource,
          now() + make_interval(secs => ttl_seconds));
end
$$;

create or replace function sextant_private.oauth_code_challenge(code_hash text, client_id text)
returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select c.code_challenge from sextant_private.oauth_codes as c
  where c.code_hash = oauth_code_challenge.code_hash and c.client_id = oauth_code_challenge.client_id;
$$;

-- A grant's data, as the token endpoint returns it.
create or replace function sextant_private.oauth_grant_json(g sextant.oauth_grants)
returns jsonb
language sql immutable
as $$
  select jsonb_build_object('grant_id', g.id, 'tenant', g.tenant_slug, 'access_level', g.access_level, 'principal', g.principal,
                            'scopes', to_jsonb(g.scopes), 'resource', g.resource);
$$;

-- A code or refresh token used a second time: its grant is revoked (whoever holds it may have
-- stolen it) and the refusal is returned, not raised, so that the revocation commits.
create or replace function sextant_private.oauth_revoke_replayed(grant_id bigint, reason text, message text)
returns jsonb
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  update sextant.oauth_grants as g set revoked_at = now(), revoked_reason = oauth_revoke_replayed.reason
  where g.id = oauth_revoke_replayed.grant_id and g.revoked_at is null;
  select jsonb_build_object('error', 'invalid_grant', 'message', oauth_revoke_replayed.message);
$$;
revoke all on function sextant_private.oauth_revoke_replayed(bigint, text, text) from public;

create or replace function sextant_private.oauth_exchange_code(code_hash text, client_id text, redirect_uri text,
  resource text, refresh_hash text, refresh_ttl_seconds integer)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_code sextant_private.oauth_codes;
  v_grant sextant.oauth_grants;
begin
  select * into v_code from sextant_private.oauth_codes as c
  where c.code_hash = oauth_exchange_code.code_hash and c.client_id = oauth_exchange_code.client_id for update;
  if v_code.code_hash is null then
    raise exception 'the authorization code is unknown' using errcode = 'SX400', hint = 'invalid_grant';
  end if;
  if v_code.used_at is not null then
    -- A replayed code: whoever holds it may have stolen it, so the tokens it gave are revoked too.
    return sextant_private.oauth_revoke_replayed(v_code.grant_id, 'authorization code used twice',
                                                 'the authorization code was already used; the tokens it gave are revoked');
  end if;
  if v_code.expires_at < now() then
    raise exception 'the authorization code has expired' using errcode = 'SX400', hint = 'invalid_grant';
  end if;
  if redirect_uri is not null and redirect_uri <> v_code.redirect_uri then
    raise exception 'redirect_uri differs from the one the code was issued for' using errcode = 'SX400', hint = 'invalid_grant';
  end if;
  if resource is not null and resource <> v_code.resource then
    raise exception 'the resource differs from the one the code was issued for' using errcode = 'SX400', hint = 'invalid_target';
  end if;
  insert into sextant.oauth_grants (tenant_slug, user_id, principal, client_id, client_name, access_level, scopes, resource)
  select v_code.tenant_slug, v_code.user_id, u.email, v_code.client_id, c.metadata ->> 'client_name', v_code.access_level,
         v_code.scopes, v_code.resource
  from sextant_private.users as u, sextant_private.oauth_clients as c
  where u.id = v_code.user_id and c.client_id = v_code.client_id
  returning * into v_grant;
  update sextant_private.oauth_codes as c set used_at = now(), grant_id = v_grant.id where c.code_hash = v_code.code_hash;
  insert into sextant_private.oauth_refresh_tokens (token_hash, grant_id, expires_at)
  values (refresh_hash, v_grant.id, now() + make_interval(secs => refresh_ttl_seconds));
  return sextant_private.oauth_grant_json(v_grant);
end
$$;

-- Everything is checked before the token is rotated: a refusal (wrong resource included)
-- leaves the refresh token as it was, so the client's next, correct refresh is not taken for a
-- replay. resource: null means the grant's own.
drop function if exists sextant_private.oauth_refresh(text, text, text, integer);
create or replace function sextant_private.oauth_refresh(old_hash text, client_id text, resource text, new_hash text,
  refresh_ttl_seconds integer)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_token sextant_private.oauth_refresh_tokens;
  v_grant sextant.oauth_grants;
begin
  select * into v_token from sextant_private.oauth_refresh_tokens as t where t.token_hash = old_hash for update;
  select * into v_grant from sextant.oauth_grants as g where g.id = v_token.grant_id for update;
  if v_token.token_hash is null or v_grant.client_id <> oauth_refresh.client_id then
    raise exception 'the refresh token is unknown' using errcode = 'SX400', hint = 'invalid_grant';
  end if;
  if v_grant.revoked_at is not null then
    raise exception 'the refresh token was revoked' using errcode = 'SX400', hint = 'invalid_grant';
  end if;
  if v_token.used_at is not null then
    return sextant_private.oauth_revoke_replayed(v_grant.id, 'refresh token used twice',
                                                 'the refresh token was already used; the grant is revoked');
  end if;
  if v_token.expires_at < now() then
    raise exception 'the refresh token has expired' using errcode = 'SX400', hint = 'invalid_grant';
  end if;
  if resource is not null and resource <> v_grant.resource then
    raise exception 'the refresh token was issued for another resource' using errcode = 'SX400', hint = 'invalid_target';
  end if;
  if sextant_private.oauth_grant_check(v_grant.id) is null then
    raise exception 'the person no longer has this access' using errcode = 'SX400', hint = 'invalid_grant';
  end if;
  update sextant_private.oauth_refresh_tokens as t set used_at = now() where t.token_hash = old_hash;
  insert into sextant_private.oauth_refresh_tokens (token_hash, grant_id, expires_at)
  values (new_hash, v_grant.id, now() + make_interval(secs => refresh_ttl_seconds));
  update sextant.oauth_grants as g set last_used_at = now() where g.id = v_grant.id;
  return sextant_private.oauth_grant_json(v_grant);
end
$$;

-- RFC 7009: revoking a refresh token (or an access token's grant, by id) ends the grant.
create or replace function sextant_private.oauth_revoke(token_hash text, grant_id bigint, client_id text)
returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  update sextant.oauth_grants as g set revoked_at = now(), revoked_reason = 'revoked by the client'
  where g.revoked_at is null and g.client_id = oauth_revoke.client_id
    and (g.id = oauth_revoke.grant_id
         or g.id = (select t.grant_id from sextant_private.oauth_refresh_tokens as t where t.token_hash = oauth_revoke.token_hash));
$$;

-- For access-token verification: the grant's tenant, level and person while it is valid;
-- null when it was revoked, the person was disabled or lost the tenant or the level.
create or replace function sextant_private.oauth_grant_check(grant_id bigint)
returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select sextant_private.oauth_grant_json(g)
  from sextant.oauth_grants as g
  join sextant_private.users as u on u.id = g.user_id and u.disabled_at is null
  join sextant_private.user_tenants as ut on ut.user_id = g.user_id and ut.tenant_slug = g.tenant_slug
  where g.id = oauth_grant_check.grant_id and g.revoked_at is null
    and sextant_private.oauth_level_rank(ut.access_level) >= sextant_private.oauth_level_rank(g.access_level);
$$;

create or replace function sextant_private.oauth_signing_key()
returns table (kid text, private_jwk text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select k.kid, public.pgp_sym_decrypt(k.private_jwk, (select s.value from sextant_private.settings as s where s.key = 'secret_key'))
  from sextant_private.oauth_keys as k where k.retired_at is null order by k.created_at desc limit 1;
$$;

-- Keys that verify: the current one and those retired less than a day ago (longer than any
-- access token lives).
create or replace function sextant_private.oauth_public_keys()
returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(jsonb_agg(k.public_jwk order by k.created_at desc), '[]')
  from sextant_private.oauth_keys as k where k.retired_at is null or k.retired_at > now() - interval '1 day';
$$;

-- Admin only (CLI and server start): a new signing key; the others are retired.
create or replace function sextant_private.oauth_add_key(kid text, private_jwk text, public_jwk jsonb)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  update sextant_private.oauth_keys as k set retired_at = now() where k.retired_at is null;
  insert into sextant_private.oauth_keys (kid, private_jwk, public_jwk)
  values (kid, public.pgp_sym_encrypt(private_jwk, (select s.value from sextant_private.settings as s where s.key = 'secret_key')), public_jwk);
end
$$;
revoke all on function sextant_private.oauth_add_key(text, text, jsonb) from public;

do $$
declare
  f text;
begin
  foreach f in array array[
    'oauth_register_client(text, text, jsonb)', 'oauth_get_client(text)',
    'oauth_granted_level(text, text[])', 'oauth_create_code(text, text, bigint, text, text, text, text, text[], text, integer)',
    'oauth_code_challenge(text, text)',
    'oauth_exchange_code(text, text, text, text, text, integer)', 'oauth_refresh(text, text, text, text, integer)',
    'oauth_revoke(text, bigint, text)', 'oauth_grant_check(bigint)', 'oauth_signing_key()', 'oauth_public_keys()'] loop
    execute format('revoke all on function sextant_private.%s from public', f);
    execute format('grant execute on function sextant_private.%s to sextant_authenticator', f);
  end loop;
end
$$;

-- Tenants: list and revoke grants (admins: the tenant's; others: their own).
create or replace function sextant.list_oauth_grants()
returns table (id bigint, principal text, client_name text, client_id text, access_level text, resource text,
               created_at timestamptz, last_used_at timestamptz, revoked_at timestamptz, revoked_reason text)
language sql stable
as $$
  select g.id, g.principal, g.client_name, g.client_id, g.access_level, g.resource, g.created_at, g.last_used_at,
         g.revoked_at, g.revoked_reason
  from sextant.oauth_grants as g order by g.created_at desc;
$$;
comment on function sextant.list_oauth_grants() is
  E'OAuth grants (connected apps): tenant admins see the tenant''s, everyone else their own.';
grant execute on function sextant.list_oauth_grants() to sextant_tenant_reader;

create or replace function sextant.revoke_oauth_grant(grant_id bigint)
returns sextant.oauth_grants
language plpgsql volatile
as $$
declare
  v_row sextant.oauth_grants;
begin
  -- RLS decides which grants the caller may revoke: the tenant's (admins) or their own, the
  -- person coming from sextant.current_person() (never from a setting a psql login can change).
  update sextant.oauth_grants as g
  set revoked_at = coalesce(g.revoked_at, now()),
      revoked_reason = coalesce(g.revoked_reason, 'revoked by ' || coalesce(sextant.current_person(), current_user))
  where g.id = revoke_oauth_grant.grant_id
  returning * into v_row;
  if v_row.id is null then
    raise exception 'grant % does not exist, or is not yours to revoke', grant_id using errcode = 'SX404';
  end if;
  return v_row;
end
$$;
comment on function sextant.revoke_oauth_grant(bigint) is
  E'Revokes an OAuth grant: its refresh tokens stop working and its access tokens are refused at once.';
grant execute on function sextant.revoke_oauth_grant(bigint) to sextant_tenant_reader;

reset role;
