-- Area: audit and limits. Called by the server's authenticator around every tool call:
-- hit_rate_limit before it, record_audit after it (batched), tenant_limits when a principal is
-- resolved. Tenant admins read sextant.audit_events (RLS); nobody can change it.
-- Invariants:
--   * counters live in PostgreSQL, so every server process shares them;
--   * a refused call does not count against the limit (its increments roll back);
--   * these are SECURITY DEFINER so the authenticator needs no rights on the tables.

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

-- Fixed windows: per principal per minute and per hour, per tenant per day.
create or replace function sextant_private.hit_rate_limit(slug text, principal text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant sextant.tenants;
  v_now timestamptz := now();
  v_check record;
  v_hits integer;
begin
  select * into v_tenant from sextant.tenants as t where t.slug = hit_rate_limit.slug;
  if v_tenant.slug is null then
    raise exception 'tenant % does not exist', slug using errcode = 'SX404';
  end if;
  for v_check in
    select * from (values
      ('p:' || slug || ':' || principal || ':minute', date_trunc('minute', v_now), interval '1 minute', v_tenant.rate_per_minute, 'per minute for you'),
      ('p:' || slug || ':' || principal || ':hour', date_trunc('hour', v_now), interval '1 hour', v_tenant.rate_per_hour, 'per hour for you'),
      ('t:' || slug || ':day', date_trunc('day', v_now), interval '1 day', v_tenant.tenant_rate_per_day, 'per day for your tenant')
    ) as c(bucket, window_start, length, cap, label)
  loop
    insert into sextant_private.rate_buckets as b (bucket, window_start, hits)
    values (v_check.bucket, v_check.window_start, 1)
    on conflict (bucket, window_start) do update set hits = b.hits + 1
    returning hits into v_hits;
    if v_hits > v_check.cap then
      raise exception 'rate limit reached: % calls %', v_check.cap, v_check.label
        using errcode = 'SX429',
              detail = format('Retry after %s seconds.',
                ceil(extract(epoch from v_check.window_start + v_check.length - v_now))::int),
              hint = 'Wait, or batch the work into fewer, larger queries.';
    end if;
  end loop;
  -- Old windows are cleared now and then, by whichever call comes by.
  if random() < 0.001 then
    delete from sextant_private.rate_buckets where window_start < v_now - interval '2 days';
  end if;
end
$$;
comment on function sextant_private.hit_rate_limit(text, text) is
  E'Counts one call for a principal and tenant; raises SX429 (with when to retry) over a limit.';
revoke all on function sextant_private.hit_rate_limit(text, text) from public;
grant execute on function sextant_private.hit_rate_limit(text, text) to sextant_authenticator;

-- Batched: the server sends a JSON array of events at once.
create or replace function sextant_private.record_audit(events json)
returns integer
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  with inserted as (
    insert into sextant.audit_events
      (at, tenant_slug, principal, auth_method, database_role, tool, sql, row_count, duration_ms,
       outcome, error_code, error_message, request_id)
    select coalesce(e.at, now()), e.tenant_slug, e.principal, e.auth_method, e.database_role, e.tool,
           left(e.sql, 100000), e.row_count, e.duration_ms, e.outcome, e.error_code,
           left(e.error_message, 2000), e.request_id
    from json_populate_recordset(null::sextant.audit_events, events) as e
    returning 1
  )
  select count(*)::integer from inserted;
$$;
comment on function sextant_private.record_audit(json) is E'Appends tool-call events to the audit log.';
revoke all on function sextant_private.record_audit(json) from public;
grant execute on function sextant_private.record_audit(json) to sextant_authenticator;

reset role;
