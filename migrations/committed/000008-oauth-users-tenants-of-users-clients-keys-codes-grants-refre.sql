--! Previous: sha1:99a8370bb23eca9d07a812b22c6c82b4a0605d0d
--! Hash: sha1:67c148a5582a91c0054b81b55ce9101efa71267c
--! Message: oauth: users, tenants of users, clients, keys, codes, grants, refresh tokens

-- OAuth 2.1 for remote MCP clients: people (users) who sign in on Sextant's login page,
-- registered clients (RFC 7591), authorization codes (PKCE S256), grants (what a person
-- allowed a client: one tenant, one level, one resource) with rotating refresh tokens, and
-- the keys that sign access tokens. Codes and refresh tokens are stored as SHA-256 hashes,
-- client secrets too; private keys are encrypted with the installation's secret key.

set local role sextant_owner;

create table if not exists sextant_private.users (
  id bigint primary key generated always as identity,
  email text not null unique check (email = lower(email) and email ~ '^[^@\s]+@[^@\s]+$' and length(email) <= 320),
  -- scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>; null: the person signs in upstream (OIDC) only.
  password_hash text,
  display_name text check (length(display_name) <= 200),
  created_at timestamptz not null default now(),
  disabled_at timestamptz
);

-- A person may belong to several tenants, each at one level.
create table if not exists sextant_private.user_tenants (
  user_id bigint not null references sextant_private.users on delete cascade,
  tenant_slug text not null references sextant.tenants on delete cascade,
  access_level text not null check (access_level in ('viewer', 'analyst', 'admin')),
  primary key (user_id, tenant_slug)
);

-- Brute-force protection: failed sign-ins per e-mail and per client address.
create table if not exists sextant_private.login_failures (
  key text not null,
  at timestamptz not null default now()
);
create index if not exists login_failures_key_at on sextant_private.login_failures (key, at);

create table if not exists sextant_private.oauth_clients (
  client_id text primary key,
  client_secret_hash text,
  -- The registration (RFC 7591): redirect_uris, client_name, grant types, auth method, ...
  metadata jsonb not null check (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz not null default now()
);

create table if not exists sextant_private.oauth_keys (
  kid text primary key,
  private_jwk bytea not null,
  public_jwk jsonb not null,
  created_at timestamptz not null default now(),
  -- Retired keys no longer sign; they verify until the tokens they signed have expired.
  retired_at timestamptz
);

create table if not exists sextant_private.oauth_codes (
  code_hash text primary key,
  client_id text not null references sextant_private.oauth_clients on delete cascade,
  user_id bigint not null references sextant_private.users on delete cascade,
  tenant_slug text not null references sextant.tenants on delete cascade,
  access_level text not null check (access_level in ('viewer', 'analyst', 'admin')),
  redirect_uri text not null,
  code_challenge text not null,
  scopes text[] not null default '{}',
  resource text not null,
  expires_at timestamptz not null,
  used_at timestamptz,
  grant_id bigint
);

-- What a person allowed a client. Tenant admins see their tenant's grants, people their own.
create table if not exists sextant.oauth_grants (
  id bigint primary key generated always as identity,
  tenant_slug text not null references sextant.tenants on delete cascade,
  user_id bigint not null references sextant_private.users on delete cascade,
  principal text not null,
  client_id text not null references sextant_private.oauth_clients on delete cascade,
  client_name text,
  access_level text not null check (access_level in ('viewer', 'analyst', 'admin')),
  scopes text[] not null default '{}',
  resource text not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz,
  revoked_reason text
);
comment on table sextant.oauth_grants is E'@behavior -insert -update -delete\nAccess a person gave an OAuth client: one tenant, one level, one resource.';
create index if not exists oauth_grants_tenant on sextant.oauth_grants (tenant_slug, created_at desc);
alter table sextant.oauth_grants enable row level security;
create policy select_own on sextant.oauth_grants for select
  using (tenant_slug = (select sextant.current_tenant())
         and ((select sextant.current_access_level()) = 'admin'
              or principal = nullif(current_setting('jwt.claims.sub', true), '')));
grant select on sextant.oauth_grants to sextant_tenant_reader;
-- Revoking is the only change a tenant can make (and a revoked grant stays revoked).
create policy revoke_own on sextant.oauth_grants for update
  using (tenant_slug = (select sextant.current_tenant())
         and ((select sextant.current_access_level()) = 'admin'
              or principal = nullif(current_setting('jwt.claims.sub', true), '')))
  with check (revoked_at is not null);
grant update (revoked_at, revoked_reason) on sextant.oauth_grants to sextant_tenant_reader;

create table if not exists sextant_private.oauth_refresh_tokens (
  token_hash text primary key,
  grant_id bigint not null references sextant.oauth_grants on delete cascade,
  expires_at timestamptz not null,
  -- Set when the token was exchanged for a new one: a second use revokes the grant.
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index if not exists oauth_refresh_tokens_grant on sextant_private.oauth_refresh_tokens (grant_id);

-- Revoking a grant must reach every server's credential cache at once.
drop trigger if exists _900_notify_auth_change on sextant.oauth_grants;
create trigger _900_notify_auth_change after update or delete on sextant.oauth_grants
  for each statement execute function sextant_private.tg_notify_auth_change();
drop trigger if exists _900_notify_auth_change on sextant_private.user_tenants;
create trigger _900_notify_auth_change after update or delete on sextant_private.user_tenants
  for each statement execute function sextant_private.tg_notify_auth_change();
drop trigger if exists _900_notify_auth_change on sextant_private.users;
create trigger _900_notify_auth_change after update or delete on sextant_private.users
  for each statement execute function sextant_private.tg_notify_auth_change();

reset role;
