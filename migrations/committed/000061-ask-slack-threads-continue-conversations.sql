--! Previous: sha1:26e020245b6e574473fb31c2aed0e212850f7287
--! Hash: sha1:a42fcaa5111ada9471a60dfd9bb731dd789291b4
--! Message: ask: a Slack thread continues its asker's conversation

-- A mention in a thread where the same person asked before continues that conversation (the
-- model sees the earlier questions and answers), as POST /ask does with conversation_id. One
-- row per thread and person: others asking in the same thread have conversations of their own.

set local role sextant_owner;

create table if not exists sextant_private.slack_threads (
  team_id text not null,
  channel_id text not null,
  thread_ts text not null check (length(thread_ts) <= 40),
  tenant_slug text not null,
  person text not null,
  conversation_id uuid not null references sextant.ask_conversations on delete cascade,
  created_at timestamptz not null default now(),
  primary key (team_id, channel_id, thread_ts, tenant_slug, person)
);
create index if not exists slack_threads_conversation_idx on sextant_private.slack_threads (conversation_id);

reset role;
