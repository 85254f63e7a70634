-- Area: ask (plain-English questions). Called by the server (src/ask/, src/slack/) through
-- the authenticator for what only the server may do: recording questions and answers,
-- counting each tenant's questions and model tokens, resolving a Slack user to a person,
-- accepting a signed Slack request once. People read their conversations (and the tenant's
-- shared ones) through the tables sextant.ask_conversations / sextant.ask_messages (RLS),
-- in GraphQL as askConversations / askMessages, and from psql.
-- Invariants:
--   * a message is written only by the server, into a conversation of the person it names;
--   * tenants' counters live in PostgreSQL (every server process shares them) and a refused
--     question counts nothing;
--   * a Slack user is answered only as a person linked in the tenant the workspace or channel
--     belongs to, at that person's current level.

set role sextant_owner;

comment on column sextant.ask_conversations.tenant_slug is E'@behavior -insert -update';
comment on column sextant.ask_conversations.owner is E'@behavior -insert -update';
comment on column sextant.slack_people.tenant_slug is E'@behavior -insert -update';
comment on column sextant.slack_people.linked_by is E'@behavior -insert -update';

-- SECURITY DEFINER: the server records for a person it authenticated; tenant roles cannot
-- write messages (no grant), so nobody can forge an answer in a conversation others read.
create or replace function sextant_private.start_ask_conversation(tenant text, person text, title text, channel text)
returns uuid
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into sextant.ask_conversations (tenant_slug, owner, title, channel)
  values (tenant, person, left(coalesce(nullif(btrim(regexp_replace(title, '\s+', ' ', 'g')), ''), 'Question'), 200), channel)
  returning id;
$$;
comment on function sextant_private.start_ask_conversation(text, text, text, text) is E'A new conversation of a person (the server, after authenticating them).';
revoke all on function sextant_private.start_ask_conversation(text, text, text, text) from public;
grant execute on function sextant_private.start_ask_conversation(text, text, text, text) to sextant_authenticator;

create or replace function sextant_private.record_ask_message(conversation_id uuid, tenant text, person text, kind text, body text, details jsonb)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id bigint;
begin
  update sextant.ask_conversations as c set updated_at = now()
  where c.id = record_ask_message.conversation_id and c.tenant_slug = tenant and c.owner = person;
  if not found then
    raise exception 'conversation % is not yours to continue', conversation_id
      using errcode = 'SX403', hint = 'Start a new conversation (leave out conversation_id).';
  end if;
  insert into sextant.ask_messages (conversation_id, tenant_slug, kind, body, details)
  values (conversation_id, tenant, kind, left(body, 100000), coalesce(details, '{}'))
  returning id into v_id;
  return v_id;
end
$$;
comment on function sextant_private.record_ask_message(uuid, text, text, text, text, jsonb) is E'Appends a question or answer to a person''s own conversation.';
revoke all on function sextant_private.record_ask_message(uuid, text, text, text, text, jsonb) from public;
grant execute on function sextant_private.record_ask_message(uuid, text, text, text, text, jsonb) to sextant_authenticator;

-- One question is admitted (and counted) only while the tenant is under both daily caps, in
-- one statement, so parallel questions cannot slip past them.
create or replace function sextant_private.ask_admit(tenant text, max_questions integer, max_tokens bigint)
returns sextant_private.ask_usage
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_row sextant_private.ask_usage;
  v_day date := (now() at time zone 'utc')::date;
begin
  insert into sextant_private.ask_usage as u (tenant_slug, day, questions)
  values (tenant, v_day, 1)
  on conflict (tenant_slug, day) do update set questions = u.questions + 1
    where u.questions < max_questions and u.tokens < max_tokens
  returning * into v_row;
  if v_row is null or v_row.questions > max_questions then
    raise exception 'your tenant has used its questions for today (% questions or % model tokens a day)', max_questions, max_tokens
      using errcode = 'SX429', detail = format('Retry after %s seconds.',
        ceil(extract(epoch from ((v_day + 1)::timestamp at time zone 'utc') - now()))::bigint),
        hint = 'An operator can raise SEXTANT_ASK_TENANT_QUESTIONS_PER_DAY or SEXTANT_ASK_TENANT_TOKENS_PER_DAY.';
  end if;
  return v_row;
end
$$;
comment on function sextant_private.ask_admit(text, integer, bigint) is E'Counts one question for a tenant today, or raises SX429 when a daily cap is reached.';
revoke all on function sextant_private.ask_admit(text, integer, bigint) from public;
grant execute on function sextant_private.ask_admit(text, integer, bigint) to sextant_authenticator;

create or replace function sextant_private.ask_add_tokens(tenant text, tokens bigint)
returns bigint
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into sextant_private.ask_usage as u (tenant_slug, day, tokens)
  values (tenant, (now() at time zone 'utc')::date, greatest(tokens, 0))
  on conflict (tenant_slug, day) do update set tokens = u.tokens + excluded.tokens
  returning u.tokens;
$$;
comment on function sextant_private.ask_add_tokens(text, bigint) is E'Adds model tokens to a tenant''s count for today; returns the day''s total.';
revoke all on function sextant_private.ask_add_tokens(text, bigint) from public;
grant execute on function sextant_private.ask_add_tokens(text, bigint) to sextant_authenticator;

-- Operators map a Slack workspace (channel_id '') or one channel to a tenant.
create or replace function sextant_private.map_slack_workspace(team_id text, channel_id text, tenant text)
returns sextant.slack_workspaces
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  insert into sextant.slack_workspaces (team_id, channel_id, tenant_slug)
  values (team_id, coalesce(channel_id, ''), tenant)
  on conflict on constraint slack_workspaces_pkey do update set tenant_slug = excluded.tenant_slug
  returning *;
$$;
comment on function sextant_private.map_slack_workspace(text, text, text) is E'Maps a Slack workspace (channel_id '''') or channel to a tenant (operators).';
revoke all on function sextant_private.map_slack_workspace(text, text, text) from public;

-- Operators link a Slack user to a person of a tenant whose workspace (or a channel of it) is
-- mapped (tenant admins do it through sextant.slack_people itself, RLS-checked).
create or replace function sextant_private.link_slack_person(team_id text, slack_user_id text, tenant text, person text)
returns sextant.slack_people
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_row sextant.slack_people;
begin
  if not exists (select from sextant.slack_workspaces as w where w.team_id = link_slack_person.team_id and w.tenant_slug = tenant) then
    raise exception 'Slack workspace % has no channel mapped to tenant %', team_id, tenant
      using errcode = 'SX409', hint = 'Map it first: sextant slack map.';
  end if;
  insert into sextant.slack_people as p (team_id, slack_user_id, tenant_slug, person, linked_by)
  values (team_id, slack_user_id, tenant, person, 'operator:' || session_user)
  on conflict on constraint slack_people_pkey do update set tenant_slug = excluded.tenant_slug, person = excluded.person, linked_by = excluded.linked_by
  returning * into v_row;
  return v_row;
end
$$;
comment on function sextant_private.link_slack_person(text, text, text, text) is E'Links a Slack user to a person of a tenant (operators).';
revoke all on function sextant_private.link_slack_person(text, text, text, text) from public;

-- Who a Slack user is, asking in a channel of a workspace: {tenant, person, access_level}, or
-- {refusal} saying why not. The channel's own mapping wins over the workspace's. The level is
-- the person's current one (an API-token principal's, or a signed-in person's in that tenant).
create or replace function sextant_private.slack_resolve(team_id text, channel_id text, slack_user_id text)
returns json
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant text;
  v_link sextant.slack_people;
  v_level text;
begin
  select w.tenant_slug into v_tenant from sextant.slack_workspaces as w
  where w.team_id = slack_resolve.team_id and w.channel_id in (coalesce(slack_resolve.channel_id, ''), '')
  order by w.channel_id desc limit 1;
  if v_tenant is null then
    return json_build_object('refusal', 'this Slack workspace is not connected to Sextant; an operator maps it to a tenant first');
  end if;
  select * into v_link from sextant.slack_people as p
  where p.team_id = slack_resolve.team_id and p.slack_user_id = slack_resolve.slack_user_id;
  if v_link is null then
    return json_build_object('refusal', 'your Slack account is not linked to a Sextant person; ask a Sextant admin of your team to link it');
  end if;
  if v_link.tenant_slug <> v_tenant then
    return json_build_object('refusal', 'your Slack account is linked to a person of another Sextant tenant than this channel''s; ask where your data lives');
  end if;
  select coalesce(
    (select p.access_level from sextant.principals as p where p.tenant_slug = v_tenant and p.name = v_link.person),
    (select ut.access_level from sextant_private.user_tenants as ut
       join sextant_private.users as u on u.id = ut.user_id
     where u.email = lower(v_link.person) and ut.tenant_slug = v_tenant and u.disabled_at is null))
  into v_level;
  if v_level is null then
    return json_build_object('refusal', 'the Sextant person your Slack account is linked to is no longer in this tenant');
  end if;
  return json_build_object('tenant', v_tenant, 'person', v_link.person, 'access_level', v_level);
end
$$;
comment on function sextant_private.slack_resolve(text, text, text) is E'The tenant, person and level a Slack user asks as, or a refusal.';
revoke all on function sextant_private.slack_resolve(text, text, text) from public;
grant execute on function sextant_private.slack_resolve(text, text, text) to sextant_authenticator;

-- The conversation a person started in a Slack thread (null: none yet), and remembering one.
create or replace function sextant_private.slack_thread_conversation(team_id text, channel_id text, thread_ts text, tenant text, person text)
returns uuid
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select t.conversation_id from sextant_private.slack_threads as t
  where t.team_id = slack_thread_conversation.team_id and t.channel_id = slack_thread_conversation.channel_id
    and t.thread_ts = slack_thread_conversation.thread_ts and t.tenant_slug = tenant and t.person = slack_thread_conversation.person;
$$;
comment on function sextant_private.slack_thread_conversation(text, text, text, text, text) is E'The conversation a person has in a Slack thread, if any.';
revoke all on function sextant_private.slack_thread_conversation(text, text, text, text, text) from public;
grant execute on function sextant_private.slack_thread_conversation(text, text, text, text, text) to sextant_authenticator;

create or replace function sextant_private.remember_slack_thread(team_id text, channel_id text, thread_ts text, tenant text, person text, conversation_id uuid)
returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into sextant_private.slack_threads (team_id, channel_id, thread_ts, tenant_slug, person, conversation_id)
  select team_id, channel_id, thread_ts, tenant, person, c.id
  from sextant.ask_conversations as c
  -- only a conversation of that person in that tenant
  where c.id = remember_slack_thread.conversation_id and c.tenant_slug = tenant and c.owner = remember_slack_thread.person
  on conflict on constraint slack_threads_pkey do update set conversation_id = excluded.conversation_id;
$$;
comment on function sextant_private.remember_slack_thread(text, text, text, text, text, uuid) is E'Remembers the conversation a person has in a Slack thread.';
revoke all on function sextant_private.remember_slack_thread(text, text, text, text, text, uuid) from public;
grant execute on function sextant_private.remember_slack_thread(text, text, text, text, text, uuid) to sextant_authenticator;

-- Replay protection: true the first time a key (a request's signature, an event id) is
-- seen; keys older than a day are swept now and then.
create or replace function sextant_private.slack_first_seen(key text)
returns boolean
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_new integer;
begin
  if random() < 0.01 then
    delete from sextant_private.slack_seen where seen_at < now() - interval '1 day';
  end if;
  insert into sextant_private.slack_seen (key) values (left(slack_first_seen.key, 200))
  on conflict do nothing;
  get diagnostics v_new = row_count;
  return v_new > 0;
end
$$;
comment on function sextant_private.slack_first_seen(text) is E'Records a signed Slack request or event; false when it was seen before (a replay).';
revoke all on function sextant_private.slack_first_seen(text) from public;
grant execute on function sextant_private.slack_first_seen(text) to sextant_authenticator;

reset role;
