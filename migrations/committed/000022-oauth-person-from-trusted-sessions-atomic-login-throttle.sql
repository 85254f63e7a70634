--! Previous: sha1:25234dffd01b65cddcffb36e207d9f863d5b8ef6
--! Hash: sha1:607cecc521a23e431690b607826cd5208c2ff3e2
--! Message: oauth: the person is trusted only in the server's own sessions; sign-in attempts and client registrations are allowed and counted in one statement

-- OAuth grants and attribution: who the request is for (the "person") came from the setting
-- jwt.claims.sub, which any session can change with `set`/set_config. A psql login at viewer
-- level set it to someone else's e-mail and listed and revoked that person's OAuth grants.
-- DESIGN.md: RLS never trusts jwt.claims.*. The login attempts: a count read before and written
-- after checking the password let 20 parallel guesses through a limit of 5, and 5 failures per
-- e-mail locked the real person out from everywhere for 15 minutes.

set local role sextant_owner;

-- The person is read from jwt.claims.sub only where nobody but Sextant's own code can have set
-- it:
--   * the server's sessions: session_user is sextant_authenticator (which nobody else can log in
--     as or become: SET SESSION AUTHORIZATION needs a superuser login), and current_user is a
--     role the authenticator switched to directly. The server sets the claim itself at the start
--     of every request transaction, and the only door through which a caller's SQL text runs
--     (the query runner) is a SECURITY DEFINER function owned by a NOLOGIN role the
--     authenticator is not a member of, so inside it (where a `set_config` that got past the
--     parser would run) current_user fails this test and the claim is ignored;
--   * an operator's session (superuser or member of sextant_owner: the CLI): they may do
--     anything anyway.
-- In the server's session but inside a function owned by another role the answer is null. Any
-- other session (a psql login) is the person its login names: session_user, whatever the
-- settings say. Login names cannot contain '@', so they never match an OAuth grant's e-mail.
-- Defined here, not in sql/, because policies below use it and sql/ runs after migrations.
create or replace function sextant.current_person()
returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select case
    when session_user = 'sextant_authenticator' then
      case when pg_catalog.pg_has_role(session_user, current_user, 'MEMBER')
           then nullif(pg_catalog.current_setting('jwt.claims.sub', true), '') end
    when exists (select from pg_catalog.pg_roles as r where r.rolname = session_user and r.rolsuper)
      or pg_catalog.pg_has_role(session_user, 'sextant_owner', 'MEMBER')
    then nullif(pg_catalog.current_setting('jwt.claims.sub', true), '')
    else session_user::text
  end;
$$;
comment on function sextant.current_person() is
  E'Who the current request is for: the person the server authenticated, or the psql login. Never taken from a setting the caller could change.';

-- People see (and revoke) their own grants; tenant admins all of the tenant's.
drop policy if exists select_own on sextant.oauth_grants;
create policy select_own on sextant.oauth_grants for select
  using (tenant_slug = (select sextant.current_tenant())
         and ((select sextant.current_access_level()) = 'admin' or principal = (select sextant.current_person())));
drop policy if exists revoke_own on sextant.oauth_grants;
create policy revoke_own on sextant.oauth_grants for update
  using (tenant_slug = (select sextant.current_tenant())
         and ((select sextant.current_access_level()) = 'admin' or principal = (select sextant.current_person())))
  with check (revoked_at is not null);

-- Attribution columns (who wrote a note, asked for a run) took the same setting as their
-- default, so a psql login could write in someone else's name.
alter table sextant.knowledge_notes alter column updated_by set default sextant.current_person();
alter table sextant.knowledge_entries alter column created_by set default sextant.current_person();
alter table sextant.learnings alter column recorded_by set default sextant.current_person();
alter table sextant.pipelines alter column updated_by set default sextant.current_person();
alter table sextant.materialization_runs alter column requested_by set default sextant.current_person();

-- Sign-in throttle: one row per (e-mail, client address), one per address and one per e-mail.
-- An attempt is counted before the password is checked, in the same statement that decides
-- whether it may be made (sextant_private.oauth_login_attempt, sql/oauth.sql); a success gives
-- it back. Past a free number of failures each further attempt waits twice as long as the one
-- before, so a guesser is slowed while the person, from their own address, still signs in. In
-- PostgreSQL so that every server process shares it.
create table if not exists sextant_private.login_throttle (
  -- 'register': client registrations per address (failures counts registrations there).
  kind text not null check (kind in ('person', 'address', 'email', 'register')),
  -- '' in the rows of kinds 'address' and 'register'.
  email text not null check (length(email) <= 320),
  -- '' in the rows of kind 'email'.
  address text not null check (length(address) <= 100),
  failures integer not null default 0 check (failures >= 0),
  last_at timestamptz not null,
  -- kind 'person': the last successful sign-in of this e-mail from this address; such an
  -- address is "known" and not slowed by failures from other addresses.
  succeeded_at timestamptz,
  primary key (kind, email, address)
);
create index if not exists login_throttle_last_at on sextant_private.login_throttle (last_at);

-- The old window counters (read, then written after the password check) are replaced.
drop function if exists sextant_private.oauth_login_failures(text[], integer);
drop function if exists sextant_private.oauth_record_login(text[], boolean);
drop table if exists sextant_private.login_failures;

reset role;
