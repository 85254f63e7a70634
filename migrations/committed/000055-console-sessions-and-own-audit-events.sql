--! Previous: sha1:e2106d1ac9ac490e9ce2ac398871ddc5e0b00b5e
--! Hash: sha1:6dec2b5ba2139fd6be8a7c346cf4eda0f529154e
--! Message: console: browser sessions in PostgreSQL; people read their own audit events

-- Owned by sextant_owner like every other table (the functions in sql/console.sql run as it).
set local role sextant_owner;

-- Console sign-ins: one row per browser session, so that any server process (replica) can
-- serve it. Only sha256 of the cookie value is kept; the tenant is picked after sign-in (a
-- person may belong to several). The person's level is not stored: it is read from
-- user_tenants on every request, so a removed or demoted person loses access at once.
create table if not exists sextant_private.console_sessions (
  id_hash bytea primary key,
  user_id bigint not null references sextant_private.users on delete cascade,
  tenant_slug text references sextant.tenants on delete cascade,
  -- The CSRF token (synchronizer pattern): sent back in a header by the page's script.
  csrf text not null,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  ended_at timestamptz
);
create index if not exists console_sessions_user_idx on sextant_private.console_sessions (user_id);
create index if not exists console_sessions_seen_idx on sextant_private.console_sessions (last_seen_at);
comment on table sextant_private.console_sessions is
  E'Web console sessions (sha256 of the cookie), their picked tenant and CSRF token; ended by sign-out or timeouts.';

-- The console shows a person their own query history from the audit log; until now only a
-- tenant's admins could read it. The person is sextant.current_person() (set by the server,
-- never from a setting the caller can change).
drop policy if exists select_own_events on sextant.audit_events;
create policy select_own_events on sextant.audit_events
  for select using (tenant_slug = (select sextant.current_tenant())
                    and principal = (select sextant.current_person()));

reset role;
