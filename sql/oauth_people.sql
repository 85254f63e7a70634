-- Area: OAuth sign-in and people (src/oauth/routes.ts, the login page; `sextant user`): the
-- sign-in and client-registration throttle, what the login page reads about a person, and the
-- admin's upsert of a person. Tokens, codes, clients and grants are in sql/oauth.sql.
-- Invariants:
--   * a sign-in attempt is counted in the statement that allows it (no read-then-write race),
--     and a registration likewise;
--   * the login page sees a person only while they are not disabled, with the tenants they hold.

set role sextant_owner;

-- Client registrations (RFC 7591) per client address: 20 an hour, counted in PostgreSQL so every
-- server process shares them (the MCP SDK's own limiter counts per process). One statement
-- allows and counts; returns 0, or the seconds until the address may register again.
create or replace function sextant_private.oauth_register_attempt(address text)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_last timestamptz;
begin
  if address is null or address = '' or length(address) > 100 then
    raise exception 'the client address is empty or too long' using errcode = 'SX400';
  end if;
  insert into sextant_private.login_throttle as t (kind, email, address, failures, last_at)
  values ('register', '', oauth_register_attempt.address, 1, clock_timestamp())
  on conflict on constraint login_throttle_pkey do update
    set failures = case when t.last_at < clock_timestamp() - interval '1 hour' then 1 else t.failures + 1 end,
        last_at = clock_timestamp()
    where t.last_at < clock_timestamp() - interval '1 hour' or t.failures < 20
  returning t.last_at into v_last;
  if v_last is not null then
    return 0;
  end if;
  select t.last_at into v_last from sextant_private.login_throttle as t
  where t.kind = 'register' and t.email = '' and t.address = oauth_register_attempt.address;
  return greatest(1, ceil(extract(epoch from v_last + interval '1 hour' - clock_timestamp())))::integer;
end
$$;

-- The three sign-in counters an attempt of (e-mail, address) touches, written once for
-- oauth_login_attempt's insert, lock, read and count.
create or replace function sextant_private.login_throttle_keys(for_email text, for_address text)
returns table (kind text, email text, address text)
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  values ('address', '', for_address), ('email', for_email, ''), ('person', for_email, for_address)
$$;
revoke all on function sextant_private.login_throttle_keys(text, text) from public;

-- Sign-in throttle (table: migration 000022). One call both decides whether an attempt may be
-- made and counts it: the rows are locked first, so concurrent attempts queue here and each
-- sees the count the one before it left (a count read before the password check and written
-- after it let 17 of 20 parallel guesses through a limit of 5). Three counters, each with its
-- free failures, after which every attempt waits 30 s * 2^(failures - free), at most 15 minutes;
-- a counter quiet for an hour starts again:
--   * the (e-mail, address) pair, 5 free: one guesser at one address;
--   * the address, 30 free: one address trying many e-mails;
--   * the e-mail, 20 free, counted and applied only from addresses where this e-mail never
--     signed in (in 30 days): many addresses guessing one e-mail, without ever slowing the
--     person at an address they have used.
-- So a guesser elsewhere never locks the person out of their usual address. Returns 0 (go ahead:
-- the attempt counts as a failure until oauth_login_succeeded gives it back) or the seconds to
-- wait.
create or replace function sextant_private.oauth_login_attempt(email text, address text)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now timestamptz;
  v_wait double precision := 0;
  v_known boolean;
  r sextant_private.login_throttle;
  v_free integer;
  v_failures integer;
begin
  if email is null or address is null or email = '' or address = '' or length(email) > 320 or length(address) > 100 then
    raise exception 'the e-mail or the client address is empty or too long' using errcode = 'SX400';
  end if;
  insert into sextant_private.login_throttle as t (kind, email, address, failures, last_at)
  select k.kind, k.email, k.address, 0, clock_timestamp()
  from sextant_private.login_throttle_keys(oauth_login_attempt.email, oauth_login_attempt.address) as k
  on conflict do nothing;
  -- One lock order for every caller (no deadlocks).
  perform from sextant_private.login_throttle as t
  where (t.kind, t.email, t.address) in (select * from
         sextant_private.login_throttle_keys(oauth_login_attempt.email, oauth_login_attempt.address))
  order by t.kind, t.email, t.address
  for update;
  -- Read after the lock: the attempt this one waited for has been counted by now.
  v_now := clock_timestamp();
  select t.succeeded_at > v_now - interval '30 days' into v_known from sextant_private.login_throttle as t
  where t.kind = 'person' and t.email = oauth_login_attempt.email and t.address = oauth_login_attempt.address;
  v_known := coalesce(v_known, false);
  for r in
    select * from sextant_private.login_throttle as t
    where (t.kind, t.email, t.address) in (select * from
         sextant_private.login_throttle_keys(oauth_login_attempt.email, oauth_login_attempt.address))
      and not (t.kind = 'email' and v_known)
  loop
    v_free := case r.kind when 'person' then 5 when 'email' then 20 else 30 end;
    v_failures := case when r.last_at < v_now - interval '1 hour' then 0 else r.failures end;
    if v_failures >= v_free then
      v_wait := greatest(v_wait, extract(epoch from r.last_at - v_now) + least(900, 30 * 2 ^ least(v_failures - v_free, 20)));
    end if;
  end loop;
  if v_wait > 0 then
    return ceil(v_wait)::integer;
  end if;
  update sextant_private.login_throttle as t
  set failures = case when t.last_at < v_now - interval '1 hour' then 1 else t.failures + 1 end, last_at = v_now
  where (t.kind, t.email, t.address) in (select * from
         sextant_private.login_throttle_keys(oauth_login_attempt.email, oauth_login_attempt.address))
    and not (t.kind = 'email' and v_known);
  -- Bounded: rows quiet for a day (known addresses: 30 days) go, a few at a time.
  delete from sextant_private.login_throttle as t
  where t.ctid = any (array(select o.ctid from sextant_private.login_throttle as o
                            where o.last_at < v_now - interval '1 day'
                              and (o.succeeded_at is null or o.succeeded_at < v_now - interval '30 days')
                            limit 100));
  return 0;
end
$$;

-- The password was right: the pair starts again and the address becomes known for this e-mail;
-- the address (and the e-mail, when it was counted) get their attempt back (an office behind
-- one address signs in many times a day).
create or replace function sextant_private.oauth_login_succeeded(email text, address text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_known boolean;
begin
  -- Known before this success: then the attempt was not counted against the e-mail.
  select t.succeeded_at > clock_timestamp() - interval '30 days' into v_known from sextant_private.login_throttle as t
  where t.kind = 'person' and t.email = oauth_login_succeeded.email and t.address = oauth_login_succeeded.address
  for update;
  update sextant_private.login_throttle as t set failures = 0, succeeded_at = clock_timestamp()
  where t.kind = 'person' and t.email = oauth_login_succeeded.email and t.address = oauth_login_succeeded.address;
  update sextant_private.login_throttle as t set failures = greatest(t.failures - 1, 0)
  where (t.kind = 'address' and t.email = '' and t.address = oauth_login_succeeded.address)
     or (t.kind = 'email' and t.email = oauth_login_succeeded.email and t.address = '' and not coalesce(v_known, false));
end
$$;

-- What the login page needs about a person: the password hash and the tenants they may pick.
create or replace function sextant_private.oauth_user_for_login(email text)
returns table (user_id bigint, password_hash text, display_name text, tenants jsonb)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select u.id, u.password_hash, u.display_name,
         coalesce((select jsonb_agg(jsonb_build_object('tenant', ut.tenant_slug, 'name', t.display_name, 'access_level', ut.access_level)
                                    order by ut.tenant_slug)
                     from sextant_private.user_tenants as ut join sextant.tenants as t on t.slug = ut.tenant_slug
                    where ut.user_id = u.id), '[]')
  from sextant_private.users as u
  where u.email = lower(btrim(oauth_user_for_login.email)) and u.disabled_at is null;
$$;

do $$
declare
  f text;
begin
  foreach f in array array['oauth_register_attempt(text)', 'oauth_login_attempt(text, text)', 'oauth_login_succeeded(text, text)',
                           'oauth_user_for_login(text)'] loop
    execute format('revoke all on function sextant_private.%s from public', f);
    execute format('grant execute on function sextant_private.%s to sextant_authenticator', f);
  end loop;
end
$$;

-- Admin only (CLI): create a person or add them to a tenant; the password hash is set when given.
create or replace function sextant_private.upsert_user(email text, password_hash text, display_name text, tenant text, access_level text)
returns table (user_id bigint, created boolean)
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_email text := lower(btrim(email));
  v_id bigint;
  v_created boolean := false;
begin
  if v_email !~ '^[^@\s]+@[^@\s]+$' then
    raise exception 'e-mail % is not valid', email using errcode = 'SX400';
  end if;
  if access_level not in ('viewer', 'analyst', 'admin') then
    raise exception 'role % is not one of viewer, analyst, admin', access_level using errcode = 'SX400';
  end if;
  if not exists (select from sextant.tenants as t where t.slug = tenant) then
    raise exception 'tenant % does not exist', tenant using errcode = 'SX404', hint = 'Run `sextant tenant list`.';
  end if;
  select u.id into v_id from sextant_private.users as u where u.email = v_email;
  if v_id is null then
    insert into sextant_private.users (email, password_hash, display_name) values (v_email, password_hash, display_name)
    returning id into v_id;
    v_created := true;
  elsif password_hash is not null then
    update sextant_private.users as u set password_hash = upsert_user.password_hash where u.id = v_id;
  end if;
  insert into sextant_private.user_tenants (user_id, tenant_slug, access_level) values (v_id, tenant, access_level)
  on conflict on constraint user_tenants_pkey do update set access_level = excluded.access_level;
  return query select v_id, v_created;
end
$$;
revoke all on function sextant_private.upsert_user(text, text, text, text, text) from public;

reset role;
