--! Previous: sha1:83ca57f451229fc7f515f70d6791ce8b7208d4b0
--! Hash: sha1:0c735662c06a8538edf3638aae1ad9ed38d5ab8f
--! Message: knowledge: notes, entries, learnings

-- Knowledge layer: what a team knows that the catalog does not. Per-table notes, free-form
-- entries, and learnings that agents record (admins confirm or reject them). Tenant-scoped;
-- analysts and admins write, everyone in the tenant reads.

set local role sextant_owner;

-- array_to_string is STABLE in general (type output functions); for text[] it is not, and
-- generated search columns need an IMMUTABLE expression.
create or replace function sextant_private.text_array_to_string(a text[])
returns text
language sql immutable parallel safe
as $$ select array_to_string(a, ' ') $$;

create table if not exists sextant.knowledge_notes (
  id bigint primary key generated always as identity,
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  table_ref text not null check (table_ref ~ '^[^.]+\.[^.]+$'),
  description text check (length(description) <= 20000),
  use_cases text check (length(use_cases) <= 20000),
  data_quality_notes text check (length(data_quality_notes) <= 20000),
  owner text check (length(owner) <= 200),
  refresh_frequency text check (length(refresh_frequency) <= 200),
  -- [{"table": "schema.other", "on": "a.id = b.a_id", "note": "..."}]
  join_hints jsonb not null default '[]' check (jsonb_typeof(join_hints) = 'array'),
  -- {"column": "note", ...}
  column_notes jsonb not null default '{}' check (jsonb_typeof(column_notes) = 'object'),
  updated_at timestamptz not null default now(),
  updated_by text default nullif(current_setting('jwt.claims.sub', true), ''),
  search tsvector generated always as (
    to_tsvector('english'::regconfig, replace(table_ref, '_', ' ') || ' ' || coalesce(description, '') || ' ' || coalesce(use_cases, '')
      || ' ' || coalesce(data_quality_notes, '') || ' ' || coalesce(column_notes::text, ''))) stored,
  unique (tenant_slug, table_ref)
);
comment on table sextant.knowledge_notes is E'What the team knows about one table: purpose, use cases, data quality, owner, refresh, joins, columns.';

create table if not exists sextant.knowledge_entries (
  id bigint primary key generated always as identity,
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  title text not null check (length(title) between 1 and 300),
  body text not null check (length(body) between 1 and 50000),
  tags text[] not null default '{}',
  created_at timestamptz not null default now(),
  created_by text default nullif(current_setting('jwt.claims.sub', true), ''),
  search tsvector generated always as (
    setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
    || setweight(to_tsvector('english', sextant_private.text_array_to_string(tags)), 'C')) stored
);
comment on table sextant.knowledge_entries is E'Free-form knowledge (markdown), with tags.';

create table if not exists sextant.learnings (
  id bigint primary key generated always as identity,
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  table_ref text check (table_ref is null or table_ref ~ '^[^.]+\.[^.]+$'),
  learning text not null check (length(learning) between 1 and 5000),
  confidence numeric not null default 0.5 check (confidence between 0 and 1),
  recorded_by text default nullif(current_setting('jwt.claims.sub', true), ''),
  status text not null default 'proposed' check (status in ('proposed', 'confirmed', 'rejected')),
  created_at timestamptz not null default now(),
  reviewed_at timestamptz,
  reviewed_by text,
  search tsvector generated always as (to_tsvector('english', coalesce(replace(table_ref, '_', ' '), '') || ' ' || learning)) stored
);
comment on table sextant.learnings is E'Corrections and facts agents recorded while working, with confidence; admins confirm or reject them.';

create index if not exists knowledge_notes_search_idx on sextant.knowledge_notes using gin (search);
create index if not exists knowledge_entries_search_idx on sextant.knowledge_entries using gin (search);
create index if not exists learnings_search_idx on sextant.learnings using gin (search);
create index if not exists learnings_tenant_table_idx on sextant.learnings (tenant_slug, table_ref);

-- Reads: the tenant. Writes: analysts and admins of the tenant; reviews: admins.
alter table sextant.knowledge_notes enable row level security;
alter table sextant.knowledge_entries enable row level security;
alter table sextant.learnings enable row level security;
drop policy if exists select_own_tenant on sextant.knowledge_notes;
create policy select_own_tenant on sextant.knowledge_notes for select using (tenant_slug = (select sextant.current_tenant()));
drop policy if exists insert_own_tenant_analyst on sextant.knowledge_notes;
create policy insert_own_tenant_analyst on sextant.knowledge_notes for insert
  with check (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) in ('analyst', 'admin'));
drop policy if exists update_own_tenant_analyst on sextant.knowledge_notes;
create policy update_own_tenant_analyst on sextant.knowledge_notes for update
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) in ('analyst', 'admin'))
  with check (tenant_slug = (select sextant.current_tenant()));
drop policy if exists delete_own_tenant_admin on sextant.knowledge_notes;
create policy delete_own_tenant_admin on sextant.knowledge_notes for delete
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin');
grant select, delete on sextant.knowledge_notes to sextant_tenant_reader;
grant insert (table_ref, description, use_cases, data_quality_notes, owner, refresh_frequency, join_hints, column_notes)
  on sextant.knowledge_notes to sextant_tenant_reader;
grant update (description, use_cases, data_quality_notes, owner, refresh_frequency, join_hints, column_notes, updated_at, updated_by)
  on sextant.knowledge_notes to sextant_tenant_reader;

drop policy if exists select_own_tenant on sextant.knowledge_entries;
create policy select_own_tenant on sextant.knowledge_entries for select using (tenant_slug = (select sextant.current_tenant()));
drop policy if exists insert_own_tenant_analyst on sextant.knowledge_entries;
create policy insert_own_tenant_analyst on sextant.knowledge_entries for insert
  with check (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) in ('analyst', 'admin'));
drop policy if exists update_own_tenant_analyst on sextant.knowledge_entries;
create policy update_own_tenant_analyst on sextant.knowledge_entries for update
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) in ('analyst', 'admin'))
  with check (tenant_slug = (select sextant.current_tenant()));
drop policy if exists delete_own_tenant_admin on sextant.knowledge_entries;
create policy delete_own_tenant_admin on sextant.knowledge_entries for delete
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin');
grant select, delete on sextant.knowledge_entries to sextant_tenant_reader;
grant insert (title, body, tags) on sextant.knowledge_entries to sextant_tenant_reader;
grant update (title, body, tags) on sextant.knowledge_entries to sextant_tenant_reader;

drop policy if exists select_own_tenant on sextant.learnings;
create policy select_own_tenant on sextant.learnings for select using (tenant_slug = (select sextant.current_tenant()));
drop policy if exists insert_own_tenant_analyst on sextant.learnings;
create policy insert_own_tenant_analyst on sextant.learnings for insert
  with check (tenant_slug = (select sextant.current_tenant()) and status = 'proposed'
              and (select sextant.current_access_level()) in ('analyst', 'admin'));
drop policy if exists update_own_tenant_admin on sextant.learnings;
create policy update_own_tenant_admin on sextant.learnings for update
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin')
  with check (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.learnings to sextant_tenant_reader;
grant insert (table_ref, learning, confidence) on sextant.learnings to sextant_tenant_reader;
grant update (status, reviewed_at, reviewed_by) on sextant.learnings to sextant_tenant_reader;

do $$
begin
  if to_regtype('sextant.knowledge_hit') is null then
    create type sextant.knowledge_hit as (
      kind text,          -- note, entry, learning
      id bigint,
      table_ref text,
      title text,
      snippet text,
      score double precision
    );
  end if;
  if to_regtype('sextant.table_knowledge') is null then
    create type sextant.table_knowledge as (
      table_ref text,
      note jsonb,
      learnings jsonb,
      entries jsonb
    );
  end if;
end
$$;

reset role;
