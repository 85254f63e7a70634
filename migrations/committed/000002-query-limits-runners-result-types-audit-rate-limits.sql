--! Previous: sha1:711a1f93393168e3645fdb650488c744953c4c80
--! Hash: sha1:fb86f5d965e8be0bac26264a4089ac5e08bbc78b
--! Message: query: limits, runners, result types, audit, rate limits

-- Read-only SQL and metadata: per-tenant limits, the query runners' schema, result types,
-- the audit log and rate-limit buckets.

-- Bookkeeping the authenticator writes (audit, rate buckets, token last-use) need not wait
-- for a WAL flush; tool transactions themselves are always rolled back.
alter role sextant_authenticator set synchronous_commit = off;

set local role sextant_owner;

-- sextant.tables changes its columns (total_bytes -> estimated_bytes); sql/catalog.sql
-- recreates it and the functions that return it.
drop view if exists sextant.tables cascade;

-- Limits and filters per tenant; every door reads them from here.
alter table sextant.tenants
  add column if not exists max_query_cost numeric not null default 1e7 check (max_query_cost > 0),
  add column if not exists max_response_bytes integer not null default 2000000
    check (max_response_bytes between 1000 and 100000000),
  add column if not exists rate_per_minute integer not null default 120 check (rate_per_minute > 0),
  add column if not exists rate_per_hour integer not null default 3000 check (rate_per_hour > 0),
  add column if not exists tenant_rate_per_day integer not null default 100000 check (tenant_rate_per_day > 0),
  -- Column names matching these (case-insensitive regular expressions) are masked in samples.
  add column if not exists sensitive_column_patterns text[] not null
    default array['pass(word|wd)?', 'secret', 'token', 'api_?key', 'ssn', 'social_security', 'e_?mail',
                  'phone', 'credit_?card', 'card_number', 'iban', 'salt', 'private_key'];

-- Per-tenant query runners live here: SECURITY DEFINER functions owned by a role nobody can
-- log in as or switch to, so the user's SQL can neither change role nor alter its runner.
create schema if not exists sextant_exec;
comment on schema sextant_exec is E'Per-tenant query runners (SECURITY DEFINER, one per tenant).';
revoke all on schema sextant_exec from public;
grant usage on schema sextant_exec to sextant_tenant_reader;

do $$
begin
  if to_regtype('sextant.query_result') is null then
    create type sextant.query_result as (
      columns jsonb,        -- [{"name": ..., "type": ...}] in result order
      rows json,            -- [[v1, v2, ...], ...] (json keeps order and duplicate names)
      row_count integer,
      truncated boolean,    -- more rows exist beyond max_rows (or the byte cap was reached)
      next_offset integer,  -- pass as row_offset to read the next page; null when complete
      elapsed_ms numeric
    );
    comment on type sextant.query_result is E'Rows of a read-only query, with column names and types.';
  end if;
  if to_regtype('sextant.query_plan') is null then
    create type sextant.query_plan as (
      total_cost numeric,
      plan_rows numeric,
      max_query_cost numeric,
      within_budget boolean,
      plan json
    );
    comment on type sextant.query_plan is E'The planner''s estimate for a query (EXPLAIN without ANALYZE).';
  end if;
  if to_regtype('sextant.table_description') is null then
    create type sextant.table_description as (
      schema_name text,
      table_name text,
      kind text,
      description text,
      estimated_rows bigint,
      total_bytes bigint,
      columns jsonb,
      primary_key jsonb,
      foreign_keys jsonb,
      referenced_by jsonb,
      indexes jsonb,
      constraints jsonb,
      dbt jsonb,
      knowledge jsonb
    );
  end if;
  if to_regtype('sextant.data_dictionary') is null then
    create type sextant.data_dictionary as (
      schema_name text,
      tables jsonb,
      join_paths jsonb,
      enums jsonb
    );
  end if;
end
$$;

-- Every tool call, append-only. Written by the server (through record_audit) outside the
-- tool's own transaction, so refused and failed calls are kept too.
create table if not exists sextant.audit_events (
  id bigint primary key generated always as identity,
  at timestamptz not null default now(),
  tenant_slug text not null,
  principal text,
  auth_method text,
  database_role text,
  tool text not null,
  sql text,
  row_count integer,
  duration_ms numeric,
  outcome text not null check (outcome in ('ok', 'refused', 'error')),
  error_code text,
  error_message text,
  request_id text
);
create index if not exists audit_events_tenant_at_idx on sextant.audit_events (tenant_slug, at desc);
comment on table sextant.audit_events is E'Every tool call: who, tenant, tool, SQL, rows, duration, outcome. Append-only.';
alter table sextant.audit_events enable row level security;
drop policy if exists select_own_tenant_admin on sextant.audit_events;
create policy select_own_tenant_admin on sextant.audit_events
  for select using (tenant_slug = (select sextant.current_tenant())
                    and (select sextant.current_access_level()) = 'admin');
grant select on sextant.audit_events to sextant_tenant_reader;

-- Append-only even for the owner: updates, deletes and truncation raise.
create or replace function sextant_private.tg_audit_events__append_only()
returns trigger
language plpgsql
as $$
begin
  raise exception 'the audit log is append-only' using errcode = 'SX403';
end
$$;
drop trigger if exists _100_append_only on sextant.audit_events;
create trigger _100_append_only before update or delete on sextant.audit_events
  for each row execute function sextant_private.tg_audit_events__append_only();
drop trigger if exists _100_no_truncate on sextant.audit_events;
create trigger _100_no_truncate before truncate on sextant.audit_events
  for each statement execute function sextant_private.tg_audit_events__append_only();

-- Fixed-window counters shared by every server process.
create table if not exists sextant_private.rate_buckets (
  bucket text not null,
  window_start timestamptz not null,
  hits integer not null default 0,
  primary key (bucket, window_start)
);

-- Servers cache verified credentials and tenants' limits; these tell them to forget.
create or replace function sextant_private.tg_notify_auth_change()
returns trigger
language plpgsql
as $$
begin
  perform pg_notify('sextant_auth', tg_table_name);
  return null;
end
$$;
drop trigger if exists _900_notify_auth_change on sextant_private.api_tokens;
create trigger _900_notify_auth_change after update or delete on sextant_private.api_tokens
  for each statement execute function sextant_private.tg_notify_auth_change();
drop trigger if exists _900_notify_auth_change on sextant.tenants;
create trigger _900_notify_auth_change after update or delete on sextant.tenants
  for each statement execute function sextant_private.tg_notify_auth_change();
drop trigger if exists _900_notify_auth_change on sextant.principals;
create trigger _900_notify_auth_change after update or delete on sextant.principals
  for each statement execute function sextant_private.tg_notify_auth_change();

reset role;
