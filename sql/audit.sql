-- Area: audit and limits. Called by the server's authenticator: admit_calls per call (with the
-- call's own SQL, one round trip) and record_audit in batches (src/audit/operation.ts, the step every door passes through),
-- tenant_limits when a principal is resolved. Tenant admins read sextant.audit_events (RLS);
-- nobody can change it.
-- Invariants:
--   * counters live in PostgreSQL, so every server process shares them;
--   * a refused call does not count against the limit;
--   * these are SECURITY DEFINER so the authenticator needs no rights on the tables;
--   * no event one caller sends can stop the others from being stored.

set role sextant_owner;

-- SECURITY DEFINER: the authenticator reads a tenant's limits without reading tenants.
create or replace function sextant_private.tenant_limits(slug text)
returns sextant.tenants
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select * from sextant.tenants as t where t.slug = tenant_limits.slug;
$$;
comment on function sextant_private.tenant_limits(text) is E'A tenant''s row (limits), for the server.';
revoke all on function sextant_private.tenant_limits(text) from public;
grant execute on function sextant_private.tenant_limits(text) to sextant_authenticator;

-- Rate-limit counters in batches, read back with every other server's calls: how servers before
-- admit_calls (below) counted; kept while such a server may still run beside a newer one.
create or replace function sextant_private.add_rate_hits(hits json)
returns json
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  with added as (
    insert into sextant_private.rate_buckets as b (bucket, window_start, hits)
    select h.bucket, h.window_start, h.hits
    from json_populate_recordset(null::sextant_private.rate_buckets, hits) as h
    where h.hits > 0
    on conflict (bucket, window_start) do update set hits = b.hits + excluded.hits
    returning b.bucket, b.window_start, b.hits
  ),
  -- Old windows are cleared now and then, by whichever flush comes by.
  swept as (
    delete from sextant_private.rate_buckets
    where random() < 0.01 and window_start < now() - interval '2 days'
    returning 1
  )
  select coalesce(json_agg(added), '[]') from added;
$$;
comment on function sextant_private.add_rate_hits(json) is
  E'Adds calls to rate-limit windows and returns the windows'' totals across all servers.';
revoke all on function sextant_private.add_rate_hits(json) from public;
grant execute on function sextant_private.add_rate_hits(json) to sextant_authenticator;

drop function if exists sextant_private.hit_rate_limit(text, text);

-- The rate-limit windows a call is counted in, at a time: the principal's minute and hour and the
-- tenant's day, fixed in UTC by the database's clock (the same for every server), with their
-- caps from the tenant's row (defaults as in src/auth/tenantLimits.ts). `who` is the principal's
-- bucket key (its name, or a hash of a name text cannot hold: src/audit/rateLimiter.ts). A SQL
-- function without settings, so it is inlined into the statements of the two below.
create or replace function sextant_private.rate_windows(tenant text, who text, at timestamptz)
returns table (bucket text, start timestamptz, length interval, cap integer, label text)
language sql stable
as $$
  select v.bucket, v.start, v.length, v.cap, v.label
  from (select 1) as one
  left join sextant.tenants as t on t.slug = rate_windows.tenant
  cross join lateral (values
    ('p:' operator(pg_catalog.||) tenant operator(pg_catalog.||) ':' operator(pg_catalog.||) who operator(pg_catalog.||) ':minute',
     pg_catalog.date_trunc('minute', at, 'UTC'), interval '1 minute', coalesce(t.rate_per_minute, 120), 'calls per minute for you'),
    ('p:' operator(pg_catalog.||) tenant operator(pg_catalog.||) ':' operator(pg_catalog.||) who operator(pg_catalog.||) ':hour',
     pg_catalog.date_trunc('hour', at, 'UTC'), interval '1 hour', coalesce(t.rate_per_hour, 3000), 'calls per hour for you'),
    ('t:' operator(pg_catalog.||) tenant operator(pg_catalog.||) ':day',
     pg_catalog.date_trunc('day', at, 'UTC'), interval '1 day', coalesce(t.tenant_rate_per_day, 100000), 'calls per day for your tenant')
  ) as v(bucket, start, length, cap, label);
$$;
revoke all on function sextant_private.rate_windows(text, text, timestamptz) from public;

-- The refusal of a call over a window's cap (admit_calls, lease_calls): SX429 naming the limit,
-- and when the window ends. Raises; returns nothing.
create or replace function sextant_private.refuse_over_limit(cap integer, label text, window_end timestamptz)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception 'rate limit reached: % %', cap, label
    using errcode = 'SX429', hint = 'Wait, or batch the work into fewer, larger queries.',
      detail = format('Retry after %s seconds.', greatest(1, ceil(extract(epoch from window_end - clock_timestamp())))::bigint);
end
$$;
revoke all on function sextant_private.refuse_over_limit(integer, text, timestamptz) from public;

-- Admission: `calls` calls are counted against the rate_windows, or none is and SX429 says
-- which limit (the raise undoes the other windows' counts). Each window's row is updated under
-- its lock and only while it stays within the cap, so servers admitting at the same time
-- together admit no more than the limit: replicas count exactly. Callers commit it on its own,
-- before the call's own transaction.
create or replace function sextant_private.admit_calls(tenant text, who text, calls integer default 1)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  w record;
  total integer;
begin
  if calls is null or calls < 1 then
    return;
  end if;
  -- Minute, hour, day: the order lease_calls and return_calls lock them in (no deadlock).
  for w in select * from sextant_private.rate_windows(tenant, who, now()) as r order by r.length loop
    total := null;
    insert into sextant_private.rate_buckets as b (bucket, window_start, hits)
    values (w.bucket, w.start, calls)
    on conflict (bucket, window_start) do update set hits = b.hits + excluded.hits
      where b.hits + excluded.hits <= w.cap
    returning b.hits into total;
    if total is null or total > w.cap then
      perform sextant_private.refuse_over_limit(w.cap, w.label, w.start + w.length);
    end if;
  end loop;
  -- Old windows are cleared now and then, by whichever call comes by.
  if random() < 0.001 then
    delete from sextant_private.rate_buckets where window_start < now() - interval '2 days';
  end if;
end
$$;
comment on function sextant_private.admit_calls(text, text, integer) is
  E'Counts calls against a principal''s and tenant''s rate limits, exactly across servers, or raises SX429 counting nothing.';
revoke all on function sextant_private.admit_calls(text, text, integer) from public;
grant execute on function sextant_private.admit_calls(text, text, integer) to sextant_authenticator;

-- A lease (src/audit/rateLimiter.ts: a server counts a fast caller's calls ahead): at least
-- `least_calls` and up to `wanted` calls, as many as every window has room for, or none and
-- SX429 as above. The windows' rows are locked first, so leases too never admit more than the
-- limit. Returns the calls granted and when
-- they were counted (return_calls gives back what the server did not use). Slower than
-- admit_calls per statement (0.23 against 0.11 ms, pgbench), so only for leases.
drop function if exists sextant_private.lease_calls(text, text, integer, integer);
create or replace function sextant_private.lease_calls(tenant text, who text, wanted integer, least_calls integer,
                                                       out granted integer, out counted_at timestamptz)
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  w record;
begin
  counted_at := now();
  granted := 0;
  if least_calls is null or least_calls < 1 or wanted is null or wanted < least_calls then
    return;
  end if;
  insert into sextant_private.rate_buckets (bucket, window_start, hits)
  select r.bucket, r.start, 0 from sextant_private.rate_windows(tenant, who, counted_at) as r order by r.length
  on conflict (bucket, window_start) do nothing;
  granted := wanted;
  -- Locked minute, hour, day, as admit_calls does (one order: callers cannot deadlock); the
  -- first window short of room is named.
  for w in
    select r.*, l.hits
    from sextant_private.rate_windows(tenant, who, counted_at) as r
    join lateral (select b.hits from sextant_private.rate_buckets as b
                  where b.bucket = r.bucket and b.window_start = r.start for update) as l on true
    order by r.length
  loop
    if w.cap - w.hits < least_calls then
      perform sextant_private.refuse_over_limit(w.cap, w.label, w.start + w.length);
    end if;
    granted := least(granted, w.cap - w.hits);
  end loop;
  update sextant_private.rate_buckets as b set hits = b.hits + granted
  from sextant_private.rate_windows(tenant, who, counted_at) as r
  where b.bucket = r.bucket and b.window_start = r.start;
end
$$;
comment on function sextant_private.lease_calls(text, text, integer, integer) is
  E'Counts between least_calls and wanted calls (as many as the windows have room for) against a principal''s and tenant''s rate limits, exactly across servers, or raises SX429 counting nothing.';
revoke all on function sextant_private.lease_calls(text, text, integer, integer) from public;
grant execute on function sextant_private.lease_calls(text, text, integer, integer) to sextant_authenticator;

-- Calls a server leased (lease_calls) and did not use, uncounted from the windows they were
-- counted in (never below zero). One window at a time, minute, hour, day: the order admit_calls
-- and lease_calls lock them in. One UPDATE of all three locked them in the table's order (the
-- day's and hour's rows, made earlier, first) and deadlocked with an admission of the same
-- principal holding its minute (40P01 after a second, meanwhile the tenant's day row held).
create or replace function sextant_private.return_calls(tenant text, who text, calls integer, counted_at timestamptz)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  w record;
begin
  if calls is null or calls < 1 then
    return;
  end if;
  for w in select r.bucket, r.start from sextant_private.rate_windows(tenant, who, counted_at) as r order by r.length loop
    update sextant_private.rate_buckets as b set hits = greatest(0, b.hits - calls)
    where b.bucket = w.bucket and b.window_start = w.start;
  end loop;
end
$$;
comment on function sextant_private.return_calls(text, text, integer, timestamptz) is
  E'Uncounts calls a server leased and did not use.';
revoke all on function sextant_private.return_calls(text, text, integer, timestamptz) from public;
grant execute on function sextant_private.return_calls(text, text, integer, timestamptz) to sextant_authenticator;

-- Batched: the server sends a JSON array of events at once. One event must never stop the
-- others (a NUL in one tenant's SQL once jammed every tenant's audit): when the batch fails,
-- each event is stored alone, sanitised (NUL and broken \u escapes become U+FFFD); an event
-- that still fails is skipped. The caller counts stored vs sent and reports the difference.
create or replace function sextant_private.record_audit(events json)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  stored integer := 0;
  event json;
begin
  begin
    insert into sextant.audit_events
      (at, tenant_slug, principal, auth_method, database_role, tool, sql, row_count, duration_ms,
       outcome, error_code, error_message, request_id)
    select coalesce(e.at, now()), e.tenant_slug, e.principal, e.auth_method, e.database_role, e.tool,
           left(e.sql, 100000), e.row_count, e.duration_ms, e.outcome, e.error_code,
           left(e.error_message, 2000), e.request_id
    from json_populate_recordset(null::sextant.audit_events, events) as e;
    get diagnostics stored = row_count;
    return stored;
  exception when others then
    null; -- fall through: one event at a time
  end;
  for event in select value from json_array_elements(events) loop
    begin
      insert into sextant.audit_events
        (at, tenant_slug, principal, auth_method, database_role, tool, sql, row_count, duration_ms,
         outcome, error_code, error_message, request_id)
      select coalesce(e.at, now()), coalesce(e.tenant_slug, ''), e.principal, e.auth_method, e.database_role,
             coalesce(e.tool, ''), left(e.sql, 100000), e.row_count, e.duration_ms,
             case when e.outcome in ('ok', 'refused', 'error') then e.outcome else 'error' end,
             left(e.error_code, 16), left(e.error_message, 2000), left(e.request_id, 64)
      from json_populate_record(null::sextant.audit_events,
             sextant_private.storable_json(event)) as e;
      stored := stored + 1;
    exception when others then
      null; -- dropped; counted by the caller (sent - stored), its text is never logged
    end;
  end loop;
  return stored;
end
$$;
comment on function sextant_private.record_audit(json) is
  E'Appends tool-call events to the audit log; returns how many were stored (an event that cannot be stored even sanitised is skipped, never blocking the others).';
revoke all on function sextant_private.record_audit(json) from public;
grant execute on function sextant_private.record_audit(json) to sextant_authenticator;

-- JSON whose strings all convert to text: \u0000 (which text cannot hold) and lone UTF-16
-- surrogate escapes become U+FFFD. Works on the JSON text, so it never fails itself.
create or replace function sextant_private.storable_json(value json)
returns json
language sql immutable strict
set search_path = pg_catalog, pg_temp
as $$
  -- (?<!\\)((?:\\\\)*) : the backslash before u starts an escape (an even run precedes it).
  select regexp_replace(regexp_replace(regexp_replace(value::text,
           '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g'),
           '(?<!\\)((?:\\\\)*)\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})', '\1\\ufffd', 'gi'),
           '(?<!\\)(?<!\\ud[89ab][0-9a-f]{2})((?:\\\\)*)\\ud[c-f][0-9a-f]{2}', '\1\\ufffd', 'gi')::json;
$$;
comment on function sextant_private.storable_json(json) is
  E'The JSON with \\u0000 and lone surrogate escapes replaced by U+FFFD, so every string converts to text.';
revoke all on function sextant_private.storable_json(json) from public;

reset role;
