--! Previous: sha1:6dec2b5ba2139fd6be8a7c346cf4eda0f529154e
--! Hash: sha1:26e020245b6e574473fb31c2aed0e212850f7287
--! Message: ask: conversations per person, Slack workspaces and people, per-tenant daily usage

-- Ask in plain English (src/ask/, src/slack/): an answering loop over Sextant's own tools as
-- the asking person. Conversations are kept per person (RLS: the owner, or anyone in the
-- tenant once shared); Slack workspaces/channels map to tenants and Slack users to people;
-- questions and model tokens are counted per tenant and day so one tenant cannot spend
-- another's budget.

set local role sextant_owner;

create table if not exists sextant.ask_conversations (
  id uuid primary key default gen_random_uuid(),
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  owner text not null default sextant.current_person() check (length(owner) between 1 and 320),
  title text not null check (length(title) between 1 and 200),
  -- 'console' (POST /ask) or 'slack'.
  channel text not null default 'console' check (channel in ('console', 'slack')),
  shared boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists ask_conversations_owner_idx on sextant.ask_conversations (tenant_slug, owner, updated_at desc);
comment on table sextant.ask_conversations is
  E'Questions asked in plain English and their answers, per person; shared conversations are readable by the whole tenant.';
alter table sextant.ask_conversations enable row level security;
-- Reading: one's own, or shared ones of the tenant. The person comes from current_person()
-- (never from a setting a psql login could change: migration 000022).
drop policy if exists select_own_or_shared on sextant.ask_conversations;
create policy select_own_or_shared on sextant.ask_conversations for select
  using (tenant_slug = (select sextant.current_tenant())
         and (shared or owner = (select sextant.current_person())));
drop policy if exists update_own on sextant.ask_conversations;
create policy update_own on sextant.ask_conversations for update
  using (tenant_slug = (select sextant.current_tenant()) and owner = (select sextant.current_person()))
  with check (tenant_slug = (select sextant.current_tenant()) and owner = (select sextant.current_person()));
drop policy if exists delete_own on sextant.ask_conversations;
create policy delete_own on sextant.ask_conversations for delete
  using (tenant_slug = (select sextant.current_tenant()) and owner = (select sextant.current_person()));
grant select on sextant.ask_conversations to sextant_tenant_reader;
grant update (title, shared) on sextant.ask_conversations to sextant_tenant_reader;
grant delete on sextant.ask_conversations to sextant_tenant_reader;

create table if not exists sextant.ask_messages (
  id bigint primary key generated always as identity,
  conversation_id uuid not null references sextant.ask_conversations on delete cascade,
  tenant_slug text not null references sextant.tenants on delete cascade,
  -- 'question' (the person), 'answer' (the loop's final answer), 'stopped' (a budget or an
  -- error ended the answer; body says why).
  kind text not null check (kind in ('question', 'answer', 'stopped')),
  body text not null check (length(body) <= 100000),
  -- answer: {sql: [...], models: [...], table: {columns, rows}, chart, steps, tokens}
  details jsonb not null default '{}' check (pg_column_size(details) <= 1000000),
  created_at timestamptz not null default now()
);
create index if not exists ask_messages_conversation_idx on sextant.ask_messages (conversation_id, id);
comment on table sextant.ask_messages is E'The questions and answers of a conversation, in order.';
alter table sextant.ask_messages enable row level security;
-- A message is visible exactly when its conversation is (that policy runs inside this one).
drop policy if exists select_visible_conversation on sextant.ask_messages;
create policy select_visible_conversation on sextant.ask_messages for select
  using (tenant_slug = (select sextant.current_tenant())
         and exists (select from sextant.ask_conversations as c where c.id = conversation_id));
grant select on sextant.ask_messages to sextant_tenant_reader;
-- Messages are written by the server only (sextant_private.record_ask_message, sql/ask.sql):
-- nobody can put words in the assistant's mouth in a conversation others read.

-- Slack: a workspace (team), or one channel of it, belongs to one tenant. Mapped by an
-- operator (sextant_private.map_slack_workspace); channel '' is the whole workspace. A tenant
-- sees its own mappings.
create table if not exists sextant.slack_workspaces (
  team_id text not null check (team_id ~ '^[A-Z0-9]{1,32}$'),
  channel_id text not null default '' check (channel_id ~ '^([A-Z0-9]{1,32})?$'),
  tenant_slug text not null references sextant.tenants on delete cascade,
  created_at timestamptz not null default now(),
  primary key (team_id, channel_id)
);
comment on table sextant.slack_workspaces is E'Slack workspaces (and channels) whose questions this tenant answers.';
alter table sextant.slack_workspaces enable row level security;
drop policy if exists select_own_tenant on sextant.slack_workspaces;
create policy select_own_tenant on sextant.slack_workspaces for select
  using (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.slack_workspaces to sextant_tenant_reader;

-- A Slack user is one Sextant person (an API-token principal's name, or a signed-in person's
-- e-mail) in one tenant, linked once by a tenant admin (GraphQL createSlackPerson, psql, or
-- `sextant slack link`). The person's level is looked up at every question, so a person
-- removed from the tenant stops being answered.
create table if not exists sextant.slack_people (
  team_id text not null check (team_id ~ '^[A-Z0-9]{1,32}$'),
  slack_user_id text not null check (slack_user_id ~ '^[A-Z0-9]{1,32}$'),
  tenant_slug text not null default sextant.current_tenant() references sextant.tenants on delete cascade,
  person text not null check (length(person) between 1 and 320),
  linked_by text default sextant.current_person(),
  created_at timestamptz not null default now(),
  primary key (team_id, slack_user_id)
);
create index if not exists slack_people_tenant_idx on sextant.slack_people (tenant_slug);
comment on table sextant.slack_people is E'Slack users linked to people of this tenant (admins link them).';
alter table sextant.slack_people enable row level security;
drop policy if exists select_own_tenant on sextant.slack_people;
create policy select_own_tenant on sextant.slack_people for select
  using (tenant_slug = (select sextant.current_tenant()));
-- Only admins link, only in a workspace mapped to their own tenant.
drop policy if exists insert_admin on sextant.slack_people;
create policy insert_admin on sextant.slack_people for insert
  with check (tenant_slug = (select sextant.current_tenant())
              and (select sextant.current_access_level()) = 'admin'
              and exists (select from sextant.slack_workspaces as w
                          where w.team_id = slack_people.team_id and w.tenant_slug = slack_people.tenant_slug));
drop policy if exists delete_admin on sextant.slack_people;
create policy delete_admin on sextant.slack_people for delete
  using (tenant_slug = (select sextant.current_tenant()) and (select sextant.current_access_level()) = 'admin');
grant select, delete on sextant.slack_people to sextant_tenant_reader;
grant insert (team_id, slack_user_id, person) on sextant.slack_people to sextant_tenant_reader;

-- Replay protection: each signed Slack request (its signature) and each event id is
-- accepted once; rows older than the timestamp window are swept.
create table if not exists sextant_private.slack_seen (
  key text primary key check (length(key) <= 200),
  seen_at timestamptz not null default now()
);
create index if not exists slack_seen_at_idx on sextant_private.slack_seen (seen_at);

-- Questions and model tokens per tenant and UTC day, shared by every server process.
create table if not exists sextant_private.ask_usage (
  tenant_slug text not null references sextant.tenants on delete cascade,
  day date not null,
  questions integer not null default 0 check (questions >= 0),
  tokens bigint not null default 0 check (tokens >= 0),
  primary key (tenant_slug, day)
);

reset role;
