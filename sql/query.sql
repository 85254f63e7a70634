-- Area: query. Tools: query, explain_query, sample_table (MCP); Query.query / explainQuery /
-- sampleTable (GraphQL); the same functions from psql.
-- Invariants (each holds without the server's parser guard):
--   * user SQL runs only inside a per-tenant runner: SECURITY DEFINER, owned by
--     sextant_t_<slug>__runner (a member of the tenant's reader role that nobody can log in as,
--     switch to or inherit from). PostgreSQL refuses SET ROLE / set_config('role') inside
--     SECURITY DEFINER functions, so SQL text that runs later (query_to_xml, ...) cannot
--     become another tenant even though the server's login may switch to every tenant role;
--   * the runner opens the SQL as a cursor: one statement only, no SELECT INTO;
--   * the transaction is made read-only before the SQL is opened;
--   * the planner's estimate is checked against the tenant's budget before any row is read;
--   * rows, bytes and time are capped.

set role sextant_owner;

-- What the runner refuses in a plan's expressions (EXPLAIN VERBOSE text): the same rule as the
-- parser guard (src/query/guard.ts) - pg_* functions except value functions, privilege and
-- visibility tests, name lookups, comments, settings other than the session's formatting, the
-- server's addresses, other transactions - and casts to the reg* lookup types.
create or replace function sextant_exec.catalog_function_pattern()
returns text
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select '(\m(?!(pg_typeof|pg_column_size|pg_column_compression|pg_size_pretty|pg_size_bytes|pg_input_is_valid'
      || '|pg_input_error_info|pg_backend_pid|pg_client_encoding|pg_encoding_to_char|pg_char_to_encoding'
      || '|pg_is_in_recovery|pg_jit_available|pg_trigger_depth)\()pg_\w+\('
      || '|\minformation_schema\.'
      || '|\m(has_\w+_privilege|row_security_active|to_reg\w+|obj_description|col_description|shobj_description'
      || '|format_type|inet_server_\w+|inet_client_\w+|txid_\w+)\('
      || '|\mcurrent_setting\((?!''(TimeZone|DateStyle|IntervalStyle|extra_float_digits|client_encoding'
      || '|server_encoding|server_version|server_version_num|lc_monetary|lc_numeric|lc_time|lc_collate|lc_ctype'
      || '|search_path|transaction_read_only|transaction_isolation|default_transaction_read_only|statement_timeout'
      || '|default_text_search_config|standard_conforming_strings|bytea_output|max_identifier_length'
      || '|integer_datetimes)''::text\))'
      || '|::(regclass|regnamespace|regrole|regproc|regprocedure|regoper|regoperator|regtype|regcollation)\M)'
$$;
comment on function sextant_exec.catalog_function_pattern() is
  E'The regular expression of catalog-revealing calls and name lookups the query runner refuses in a plan.';
revoke all on function sextant_exec.catalog_function_pattern() from public;
grant execute on function sextant_exec.catalog_function_pattern() to sextant_tenant_reader;

-- Each tenant's limits and schemas, for its runner to read itself (the runner takes no limit
-- from its caller). Read with the view owner's rights, so without the tables' row policies
-- (each asks current_tenant(), which reads the role graph); the view shows the tenants whose
-- role the current role has, which for a tenant role or its runner is its own.
create or replace view sextant_exec.runner_limits with (security_barrier) as
  select t.slug, t.max_rows, t.max_response_bytes, t.max_query_cost,
         (select string_agg(quote_ident(s.schema_name), ', ' order by s.schema_name)
            from sextant.tenant_schemas as s where s.tenant_slug = t.slug) as schema_list
  from sextant.tenants as t
  where pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident('sextant_t_' || t.slug)), 'USAGE');
comment on view sextant_exec.runner_limits is
  E'The limits and schemas of the tenants whose role the current role has (its own): what a query runner reads.';
revoke all on sextant_exec.runner_limits from public;
grant select on sextant_exec.runner_limits to sextant_tenant_reader;

-- The body of every tenant's runner; %1$s is the tenant slug (a validated identifier).
create or replace function sextant_private.query_runner_source(slug text)
returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $body$
select format($src$
create or replace function sextant_exec.%1$I(sql text, max_rows integer, row_offset integer, explain_only boolean)
returns sextant.query_result
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
  max_bytes integer;
  max_cost numeric;
  v_cursor refcursor;
  v_result sextant.query_result;
  v_row record;
  v_json json;
  v_rows json[] := '{}';
  v_first json;
  v_keys integer;
  v_types oid[];
  v_send bytea;
  v_at integer;
  v_columns jsonb;
  v_distinct integer;
  v_count integer := 0;
  v_bytes bigint := 0;
  v_message text;
  v_truncated boolean := false;
  v_text text;
  v_plan jsonb;
  v_lower text;
  v_cost numeric;
  v_started timestamptz := clock_timestamp();
begin
  -- Whatever transaction called us, nothing in it can write from here on.
  v_text := set_config('transaction_read_only', 'on', true);
  -- The limits are read here, not taken from the caller: the tenant's own logins may call this
  -- function directly, and nothing they pass can raise them. In the same statement, unqualified
  -- names are made to resolve to the tenant's schemas, after pg_catalog.
  select least(coalesce(%1$I.max_rows, 500), l.max_rows), l.max_response_bytes, l.max_query_cost,
         set_config('search_path', 'pg_catalog' || coalesce(', ' || l.schema_list, ''), true)
    into max_rows, max_bytes, max_cost, v_text
    from sextant_exec.runner_limits as l
   where l.slug = %3$L;
  if max_bytes is null then
    raise exception 'queries run as a tenant, and the current role belongs to none'
      using errcode = 'SX403', hint = 'Use a tenant''s API token, or an analyst login created with `sextant analyst create`.';
  end if;
  if sql is null or btrim(sql) = '' then
    raise exception 'the SQL text is empty' using errcode = 'SX400';
  end if;
  if length(sql) > 100000 then
    raise exception 'the SQL text is %% characters long; the limit is 100000', length(sql) using errcode = 'SX413';
  end if;
  if max_rows < 1 then
    raise exception 'max_rows must be at least 1, got %%', max_rows using errcode = 'SX400';
  end if;
  row_offset := coalesce(row_offset, 0);
  if row_offset < 0 then
    raise exception 'row_offset must not be negative, got %%', row_offset using errcode = 'SX400';
  end if;

  -- A cursor takes exactly one statement and refuses SELECT INTO.
  begin
    open v_cursor no scroll for execute sql;
  exception when insufficient_privilege or undefined_table or invalid_schema_name then
    -- "permission denied for schema globex_ops" and "relation nosuch.x does not exist" would
    -- tell which schemas and tables exist: both get one answer. Other refusals keep theirs.
    get stacked diagnostics v_message = message_text;
    if (sqlstate = '42501' and v_message !~ '^permission denied for (schema|table|view|materialized view|sequence|foreign table|column|relation) ')
       or v_message ~ '^missing FROM-clause' then
      raise;
    end if;
    raise exception 'the query names a schema, table or view that does not exist or that your tenant cannot read'
      using errcode = 'SX404',
            hint = 'Call list_schemas, list_tables or describe_table to see what you can read.';
  end;

  -- Only now is the text known to be one statement, so EXPLAIN cannot smuggle a second one.
  -- (The query is planned twice, here and for the cursor: PostgreSQL shows no open cursor's
  -- plan. The plan's text is parsed once, as jsonb, for the checks and the cost.)
  execute 'explain (format json, verbose) ' || sql into v_text;
  -- Constants are folded while planning, so `select repeat('x', 100000000)` has a 100 MB plan:
  -- bounded like a response before anything reads it (or explain_query returns it).
  if octet_length(v_text) > greatest(max_bytes, 1000000) then
    close v_cursor;
    raise exception 'the plan of this query is %% bytes (its constants are computed while planning), over the limit of %% bytes',
      octet_length(v_text), greatest(max_bytes, 1000000)
      using errcode = 'SX413',
            hint = 'Compute large values from table data, not from constants, and select only what you need.';
  end if;
  v_plan := v_text::jsonb;
  -- The database's own wall against catalog reads (the parser guard names the reason first):
  -- no scan of a relation in pg_catalog, pg_toast or information_schema (views over them
  -- included), no pg_* set-returning function, and no catalog-revealing function or name
  -- lookup anywhere in the plan's expressions. Name lookups folded while planning (a cast of
  -- a missing name to regclass) fail before this check; only the parser guard stops those.
  -- (One path walk over the plan. The pattern is written into this function when it is made,
  -- and only tried on a plan that holds one of the words it starts with: trying it costs
  -- milliseconds here, the words microseconds.)
  -- (The path walk too: everything it looks for is spelt with 'pg_' or 'information_schema'.)
  v_lower := lower(v_text);
  if ((strpos(v_lower, 'pg_') > 0 or strpos(v_lower, 'information_schema') > 0)
      and jsonb_path_exists(v_plan,
       '$.** ? ((exists(@."Relation Name") && (@."Schema" == "information_schema" || @."Schema" starts with "pg_"))'
       ' || @."Function Name" starts with "pg_")'))
     or ((strpos(v_lower, 'pg_') > 0 or strpos(v_lower, 'information_schema.') > 0 or strpos(v_lower, 'has_') > 0
          or strpos(v_lower, 'row_security_active(') > 0 or strpos(v_lower, 'to_reg') > 0
          or strpos(v_lower, 'obj_description(') > 0 or strpos(v_lower, 'col_description(') > 0
          or strpos(v_lower, 'format_type(') > 0 or strpos(v_lower, 'inet_') > 0 or strpos(v_lower, 'txid_') > 0
          or strpos(v_lower, 'current_setting(') > 0 or strpos(v_lower, '::reg') > 0)
         and v_text ~* %2$L) then
    close v_cursor;
    raise exception 'the query reads PostgreSQL''s catalogs, which hold every tenant''s objects, statistics, sessions and settings'
      using errcode = 'SX400',
            hint = 'Call list_schemas, list_tables, describe_table or list_functions to see the schemas, tables, columns and functions you can read.';
  end if;
  v_cost := (v_plan #>> '{0,Plan,Total Cost}')::numeric;
  if explain_only then
    close v_cursor;
    return (jsonb_build_object('total_cost', v_cost, 'plan_rows', (v_plan #>> '{0,Plan,Plan Rows}')::numeric, 'max_query_cost', max_cost),
            v_text::json, 0, false, null::integer, round(extract(epoch from clock_timestamp() - v_started) * 1000, 3));
  end if;
  if v_cost > max_cost then
    close v_cursor;
    raise exception 'the estimated cost of this query (%%) is over your budget (%%)', round(v_cost), round(max_cost)
      using errcode = 'SX413',
            hint = 'Add filters or a LIMIT, aggregate in SQL, or call explain_query to see the plan.';
  end if;

  -- Rows are read here; a source's server failing now (its statement timeout, a lost
  -- connection) is named by the source (sextant_exec.raise_source_failure). A block, not the one
  -- around the open: postgres_fdw opens remote savepoints only where a remote transaction
  -- starts, so this one costs the remote nothing.
  begin
    if row_offset > 0 then
      move forward row_offset from v_cursor;
    end if;
    loop
      fetch v_cursor into v_row;
      if not found then
        exit;
      elsif v_count >= max_rows then
        v_truncated := true;
        exit;
      end if;
      -- A row whose stored size alone is far over what is left is refused before it is turned
      -- into JSON (which costs seconds for a 100 MB value); JSON is at most 8 times smaller
      -- than the stored row (an int8[] of zeros is 4 times), so nothing that fits is refused here.
      -- (Such a row's stored size is then over what is left too, so the one check below ends it.)
      v_json := case when pg_column_size(v_row) <= 8 * (max_bytes - v_bytes) then to_json(v_row) end;
      -- The byte cap holds per row, before the row joins the result: a row that does not fit in
      -- what is left ends the page; a first row that alone exceeds the cap (one huge value) is
      -- refused, so it never leaves the server. A row's bytes are its JSON's: to_json's value is
      -- built in memory with a 4-byte header, so pg_column_size less 4 is its octet_length,
      -- without the copy out and back in that json::text makes of every row.
      v_bytes := v_bytes + coalesce(pg_column_size(v_json) - 4, pg_column_size(v_row));
      if v_bytes > max_bytes then
        if v_count = 0 then
          close v_cursor;
          raise exception 'row %% of the result alone is about %% bytes, over the response limit of %% bytes',
            row_offset + 1, coalesce(octet_length(v_json::text), pg_column_size(v_row)), max_bytes
            using errcode = 'SX413',
                  hint = 'Select fewer or shorter columns (left(col, 1000), length(col)), or aggregate in SQL.';
        end if;
        v_truncated := true;
        exit;
      end if;
      if v_count = 0 then
        -- The names are the first row's keys; its binary form (record_send) starts each
        -- column with its type's oid: the types, without planning the query a third time.
        v_first := v_json;
        begin
          v_send := record_send(v_row);
        exception when undefined_function then
          v_send := null;  -- a type with no binary form (aclitem): types are a courtesy, rows are not
        end;
      end if;
      v_rows := v_rows || v_json;
      v_count := v_count + 1;
    end loop;
  exception when query_canceled or others then
    get stacked diagnostics v_message = message_text, v_text = pg_exception_context;
    perform sextant_exec.raise_source_failure(v_plan, sqlstate, v_message, v_text);
    raise;
  end;
  close v_cursor;

  -- No row read: the fetch that found none left v_row a row of nulls of the result's type, which
  -- still carries each column's name and type (no second plan; a trailing ';' is no matter).
  if v_first is null then
    v_first := to_json(v_row);
    v_send := record_send(v_row);  -- every value null: no type's send function is called
  end if;
  -- record_send: the column count, then per column its type's oid, its length (-1: null) and
  -- its bytes.
  if v_send is null then
    -- A type with no binary form: the types as the inner side of the join on false.
    begin
      execute format('select array[%%s]::regtype[] from (select) as sextant_one left join (%%s%%s) as q on false',
        (select string_agg(format('pg_catalog.pg_typeof(q.%%I)', n), ', ') from json_object_keys(v_first) as n), sql, e'\n')
        into v_types;
    exception when others then
      v_types := null;  -- types are a courtesy: never fail a query that ran for them
    end;
  else
    v_at := 4;
    for i in 1 .. ((get_byte(v_send, 0) << 24) | (get_byte(v_send, 1) << 16) | (get_byte(v_send, 2) << 8) | get_byte(v_send, 3)) loop
      v_types[i] := ((get_byte(v_send, v_at) << 24) | (get_byte(v_send, v_at + 1) << 16)
                     | (get_byte(v_send, v_at + 2) << 8) | get_byte(v_send, v_at + 3))::oid;
      v_at := v_at + 8 + greatest((get_byte(v_send, v_at + 4) << 24) | (get_byte(v_send, v_at + 5) << 16)
                                  | (get_byte(v_send, v_at + 6) << 8) | get_byte(v_send, v_at + 7), 0);
    end loop;
  end if;
  select coalesce(jsonb_agg(jsonb_build_object('name', c.name, 'type', coalesce(v_types[c.i]::regtype::text, 'unknown')) order by c.i), '[]'),
         count(distinct c.name), count(*)
    into v_columns, v_distinct, v_keys
    from json_object_keys(v_first) with ordinality as c(name, i);
  -- (An empty result may repeat a name: there is no row to misread.)
  if v_distinct < v_keys and v_count > 0 then
    raise exception 'the result has two columns with the same name'
      using errcode = 'SX400', hint = 'Give every output column a distinct alias.';
  end if;

  -- Field by field into a variable of the result type (simple expressions, no executor), which
  -- is handed to the caller as it is: a row expression `return (...)` is built as a tuple and
  -- then copied out of the function, two more copies of 1,000 rows of JSON (~8%% of the call).
  v_result.columns := v_columns;
  v_result.rows := coalesce(array_to_json(v_rows), '[]');
  v_result.row_count := v_count;
  v_result.truncated := v_truncated;
  v_result.next_offset := case when v_truncated then row_offset + v_count end;
  v_result.elapsed_ms := round(extract(epoch from clock_timestamp() - v_started) * 1000, 3);
  return v_result;
end
$fn$;
$src$, 'run_query__' || slug, sextant_exec.catalog_function_pattern(), slug);
$body$;
comment on function sextant_private.query_runner_source(text) is
  E'The CREATE FUNCTION text of a tenant''s query runner.';
revoke all on function sextant_private.query_runner_source(text) from public;

-- (Re)creates a tenant's runner and its owner role. Runs as the admin (it creates a role and
-- hands the function to it); re-run for every tenant whenever this file is applied.
-- Hands a SECURITY DEFINER function in sextant_exec (made by `source`) to its own NOLOGIN
-- role, which inherits only the tenant's reader role: the pattern of the query runner and the
-- model builder (sql/materialize_models.sql). Creates the role when missing; only `grantee` may call
-- the function. Admin rights needed (it changes owners).
create or replace function sextant_private.install_definer(owner_role text, reader text, source text, signature text, grantee text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if to_regrole(owner_role) is null then
    -- NOLOGIN and never granted to a login: no session can become it or inherit from it.
    execute format('create role %I nologin', owner_role);
  end if;
  execute format('grant %I to %I', reader, owner_role);
  -- Handing a function to a role takes membership in it: a superuser has it, an installer with
  -- only CREATEROLE (managed PostgreSQL) gets it here (PostgreSQL 16+ gives the creator ADMIN
  -- on the role, not SET; 15 gives neither).
  if not pg_has_role(owner_role, case when current_setting('server_version_num')::int >= 160000 then 'SET' else 'MEMBER' end) then
    execute format('grant %I to %I', owner_role, current_user);
  end if;
  execute source;
  -- Changing the owner needs CREATE on the schema for the new owner, for a moment.
  execute format('grant create on schema sextant_exec to %I', owner_role);
  execute format('alter function sextant_exec.%s owner to %I', signature, owner_role);
  execute format('revoke create on schema sextant_exec from %I', owner_role);
  execute format('revoke all on function sextant_exec.%s from public', signature);
  execute format('grant execute on function sextant_exec.%s to %I', signature, grantee);
end
$$;
revoke all on function sextant_private.install_definer(text, text, text, text, text) from public;

create or replace function sextant_private.install_query_runner(slug text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform sextant_private.install_definer('sextant_t_' || slug || '__runner', 'sextant_t_' || slug,
    sextant_private.query_runner_source(slug),
    format('%I(text, integer, integer, boolean)', 'run_query__' || slug),
    'sextant_t_' || slug);
  -- The runner once took its limits as arguments, which a tenant's own login could choose: gone.
  execute format('drop function if exists sextant_exec.%I(text, integer, integer, integer, numeric, boolean)', 'run_query__' || slug);
end
$$;
comment on function sextant_private.install_query_runner(text) is
  E'Creates or refreshes the query runner of one tenant.';
revoke all on function sextant_private.install_query_runner(text) from public;

-- Calls the current tenant's runner, which reads the tenant's limits and checks the arguments
-- itself. Runs as the caller (a tenant role), so it lives in sextant_exec, which tenant roles
-- can use (sextant_private they cannot). STABLE, so sextant.query (a SQL function) is inlined
-- into the caller's statement: one PL/pgSQL call and one copy of the result less.
-- explain_only: the runner returns cost, rows and budget in `columns` and the plan in `rows`.
-- No SET search_path (it costs a settings change each way per call): every name here is
-- qualified, and it runs with the caller's own rights.
create or replace function sextant_exec.call_runner(sql text, max_rows integer, row_offset integer, explain_only boolean)
returns sextant.query_result
language plpgsql stable
as $$
declare
  v_role text := current_user;
  v_slug text := pg_catalog.split_part(pg_catalog.substr(v_role, 11), '__', 1);
  v_call record;
  v_runner pg_catalog.regproc;
begin
  -- A tenant's own roles (how the server calls: sextant_t_<slug>, its __analyst or __admin)
  -- name their tenant (slugs never hold '__'). The name is only a hint: the runner it names must
  -- exist and be executable by the current role (run_query__<slug> is granted to that tenant's
  -- role only), else the role is looked up like any other (current_tenant reads the role graph).
  -- Whichever way, a tenant without a runner the current role may call is no tenant: a role
  -- named like a tenant that does not exist gets SX403 like a role of none, not 42883.
  if pg_catalog.left(v_role, 10) operator(pg_catalog.=) 'sextant_t_' and v_slug operator(pg_catalog.<>) ''
     and pg_catalog.substr(v_role, 11 operator(pg_catalog.+) pg_catalog.length(v_slug)) operator(pg_catalog.=) any ('{"",__analyst,__admin}'::text[]) then
    v_runner := pg_catalog.to_regproc(pg_catalog.format('sextant_exec.%I', pg_catalog.concat('run_query__', v_slug)));
  end if;
  if v_runner is null or not pg_catalog.has_function_privilege(v_runner::pg_catalog.oid, 'EXECUTE') then
    v_slug := sextant.current_tenant();
    v_runner := pg_catalog.to_regproc(pg_catalog.format('sextant_exec.%I', pg_catalog.concat('run_query__', v_slug)));
    if v_slug is null or v_runner is null or not pg_catalog.has_function_privilege(v_runner::pg_catalog.oid, 'EXECUTE') then
      raise exception 'queries run as a tenant, and the current role belongs to none'
        using errcode = 'SX403', hint = 'Use a tenant''s API token, or an analyst login created with `sextant analyst create`.';
    end if;
  end if;
  -- The result as one value (not `select * from`, which puts it in a tuplestore and takes it
  -- apart): a 1,000-row result is copied a few times less.
  execute pg_catalog.format('select sextant_exec.%I($1, $2, $3, $4) as r', pg_catalog.concat('run_query__', v_slug))
    into v_call
    using sql, max_rows, row_offset, explain_only;
  return v_call.r;
end
$$;
comment on function sextant_exec.call_runner(text, integer, integer, boolean) is
  E'Runs SQL through the current tenant''s runner (which checks the arguments and applies the tenant''s limits).';
revoke all on function sextant_exec.call_runner(text, integer, integer, boolean) from public;
grant execute on function sextant_exec.call_runner(text, integer, integer, boolean) to sextant_tenant_reader;

reset role;

-- Runners are refreshed for every tenant each time this file runs (admin rights needed).
select sextant_private.install_query_runner(t.slug) from sextant.tenants as t;

set role sextant_owner;

create or replace function sextant.query(sql text, max_rows integer default 500, row_offset integer default 0)
returns sextant.query_result
-- STABLE for the API (a GraphQL query field, no writes); the runner it calls is VOLATILE.
-- One SQL expression over a STABLE function: PostgreSQL inlines it into the calling statement.
language sql stable
as $$
  select sextant_exec.call_runner($1, $2, $3, false)
$$;
comment on function sextant.query(text, integer, integer) is
  E'Runs one read-only SELECT / WITH / VALUES / TABLE statement as your tenant and returns its rows '
  'as data (max_rows capped by the tenant; when truncated, pass next_offset as row_offset for the next page).';
grant execute on function sextant.query(text, integer, integer) to sextant_tenant_reader;

create or replace function sextant.explain_query(sql text)
returns sextant.query_plan
language plpgsql stable
as $$
declare
  v_result sextant.query_result := sextant_exec.call_runner(explain_query.sql, 1, 0, true);
  v_budget numeric := (v_result.columns ->> 'max_query_cost')::numeric;
begin
  return ((v_result.columns ->> 'total_cost')::numeric, (v_result.columns ->> 'plan_rows')::numeric, v_budget,
          (v_result.columns ->> 'total_cost')::numeric <= v_budget, v_result.rows);
end
$$;
comment on function sextant.explain_query(text) is
  E'The plan of a query without running it (EXPLAIN, no ANALYZE): estimated cost and rows, and '
  'whether the cost is within your tenant''s budget.';
grant execute on function sextant.explain_query(text) to sextant_tenant_reader;

reset role;

set role sextant_owner;

create or replace function sextant.sample_table(table_name text, schema_name text default null, n integer default 20)
returns sextant.query_result
language plpgsql stable
as $$
declare
  v_oid oid := sextant_exec.resolve_table(sample_table.table_name, sample_table.schema_name);
  v_sensitive text[];
  v_sql text;
begin
  if sample_table.n is null or sample_table.n not between 1 and 1000 then
    raise exception 'n must be between 1 and 1000, got %', n using errcode = 'SX400';
  end if;
  -- The table's sensitive columns in one call (sql/catalog.sql: the tenant's rules read once).
  v_sensitive := (select sextant_exec.sensitive_columns(c.oid, ns.nspname, c.relname)
                    from pg_catalog.pg_class as c join pg_catalog.pg_namespace as ns on ns.oid = c.relnamespace
                   where c.oid = v_oid);
  -- Built from catalog identifiers only; sensitive columns are replaced, unreadable ones left out.
  select format('select %s from %I.%I limit %s',
                string_agg(case when a.attname::text = any(v_sensitive)
                                then format('''[masked]''::text as %I', a.attname)
                                else format('%I', a.attname) end, ', ' order by a.attnum),
                ns.nspname, c.relname, sample_table.n)
    into v_sql
  from pg_catalog.pg_class as c
  join pg_catalog.pg_namespace as ns on ns.oid = c.relnamespace
  join pg_catalog.pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  where c.oid = v_oid and has_column_privilege(c.oid, a.attnum, 'select')
  group by ns.nspname, c.relname;
  return sextant_exec.call_runner(v_sql, sample_table.n, 0, false);
end
$$;
comment on function sextant.sample_table(text, text, integer) is
  E'The first n rows (default 20, at most 1000) of a table or view, with sensitive columns masked.';
grant execute on function sextant.sample_table(text, text, integer) to sextant_tenant_reader;

reset role;
