--! Previous: sha1:42eceaec8c0373d2c91dc4d6146c5fb3098688ae
--! Hash: sha1:25234dffd01b65cddcffb36e207d9f863d5b8ef6
--! Message: MCP sessions: live sessions kept in PostgreSQL, bounded per principal and per tenant

-- MCP sessions (Streamable HTTP) were one list of 1,000 in each server process's memory, the
-- oldest dropped first, so any token holder could end every other tenant's sessions by opening
-- new ones. Live sessions become rows, so every server process counts the same sessions per
-- principal and per tenant (sql/audit.sql: open_mcp_session, touch_mcp_sessions,
-- close_mcp_session); a session's transport still lives in the process that opened it.
set local role sextant_owner;

create table if not exists sextant_private.mcp_sessions (
  session_id uuid primary key,
  tenant_slug text not null references sextant.tenants (slug) on delete cascade,
  principal text not null,
  opened_at timestamptz not null default now(),
  last_seen timestamptz not null default now()
);
-- Counting and choosing a principal's oldest session read by (tenant, principal).
create index if not exists mcp_sessions_tenant_principal_idx
  on sextant_private.mcp_sessions (tenant_slug, principal, last_seen);
comment on table sextant_private.mcp_sessions is
  E'Live MCP sessions: who opened each and when it was last used; bounded per principal and per tenant.';

reset role;
