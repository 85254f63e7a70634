/**
 * Hostile SQL for the query path, run as tenant acme. Each case says what each wall answers:
 *   guard: the code the query tool returns with the parser guard on (the real door);
 *   db:    what PostgreSQL alone answers when the SQL reaches sextant.query() without the guard
 *          (a GraphQL or psql caller): an error code, "error" (refused, code varies by
 *          version), or "ok" (allowed by the database but harmless: no side effect, no leak).
 * Every case is also checked for side effects from an admin connection. Grow this list with
 * every escape found.
 */
export interface HostileCase {
  name: string;
  sql: string;
  guard: string;
  db: string;
}

const c = (name: string, sql: string, guard: string, db: string): HostileCase => ({ name, sql, guard, db });

export const hostileQueries: HostileCase[] = [
  // Multi-statement strings
  c("two selects", "select 1; select 2", "SX400", "42P11"),
  c("select then delete", "select 1; delete from acme_sales.orders", "SX400", "42P11"),
  c("select then drop", "select 1; drop table acme_sales.orders", "SX400", "42P11"),
  c("comment hides nothing", "select 1 /* x */; update acme_sales.orders set amount = 0", "SX400", "42P11"),
  c("line comment then statement", "select 1 --x\n; delete from acme_sales.orders", "SX400", "42P11"),
  c("begin/commit wrapper", "begin; delete from acme_sales.orders; commit", "SX400", "42P11"),
  c("rollback smuggle", "rollback; select 1", "SX400", "42P11"),
  c("set role then select", "set role sextant_t_globex; select * from globex_ops.shipments", "SX400", "42501"), // names are checked before the one-statement rule
  c("reset role then select", "reset role; select 1", "SX400", "42P11"),
  c("empty statements around", ";;select 1;;delete from acme_sales.orders", "SX400", "42P11"),
  // Writes
  c("insert", "insert into acme_sales.orders values (1000, 'x', 1)", "SX400", "42P11"),
  c("insert returning", "insert into acme_sales.orders values (1000, 'x', 1) returning *", "SX400", "error"),
  c("update", "update acme_sales.orders set amount = 0", "SX400", "42P11"),
  c("update returning", "update acme_sales.orders set amount = 0 returning id", "SX400", "error"),
  c("delete", "delete from acme_sales.orders", "SX400", "42P11"),
  c("delete returning", "delete from acme_sales.orders returning *", "SX400", "error"),
  c("merge", "merge into acme_sales.orders o using (select 1 as id) s on o.id = s.id when matched then delete", "SX400", "42P11"),
  c("truncate", "truncate acme_sales.orders", "SX400", "42P11"),
  c("drop table", "drop table acme_sales.orders", "SX400", "42P11"),
  c("create table", "create table acme_sales.evil (id int)", "SX400", "42P11"),
  c("create table as", "create table acme_sales.evil as select 1", "SX400", "42P11"),
  c("alter table", "alter table acme_sales.orders add column x int", "SX400", "42P11"),
  c("grant", "grant select on acme_sales.orders to public", "SX400", "42P11"),
  c("copy to stdout", "copy acme_sales.orders to stdout", "SX400", "42P11"),
  c("copy to program", "copy (select 1) to program 'touch /tmp/pwned'", "SX400", "42P11"),
  c("create function", "create function acme_sales.f() returns int language sql as 'select 1'", "SX400", "42P11"),
  c("do block", "do $$ begin delete from acme_sales.orders; end $$", "SX400", "42P11"),
  c("call procedure", "call acme_sales.p()", "SX400", "42883"),
  c("comment on", "comment on table acme_sales.orders is 'pwned'", "SX400", "42P11"),
  c("create index", "create index on acme_sales.orders (amount)", "SX400", "42P11"),
  // Data-modifying CTEs
  c("delete in CTE", "with d as (delete from acme_sales.orders returning *) select count(*) from d", "SX400", "error"),
  c("update in CTE", "with u as (update acme_sales.orders set amount = 0 returning 1) select count(*) from u", "SX400", "error"),
  c("insert in CTE", "with i as (insert into acme_sales.orders values (2000, 'x', 1) returning 1) select * from i", "SX400", "error"),
  c("nested CTE write", "with a as (select 1), b as (delete from acme_sales.orders returning 1) select * from a", "SX400", "error"),
  c("CTE write unused", "with b as (delete from acme_sales.orders) select 1", "SX400", "error"),
  // SELECT INTO and locking
  c("select into", "select * into acme_sales.copy from acme_sales.orders", "SX400", "42P11"),
  c("select into temp", "select 1 as x into temp t", "SX400", "42P11"),
  c("for update", "select * from acme_sales.orders for update", "SX400", "error"),
  c("for share", "select * from acme_sales.orders for share", "SX400", "error"),
  c("for no key update skip locked", "select * from acme_sales.orders for no key update skip locked", "SX400", "error"),
  c("for update in subquery", "select * from (select * from acme_sales.orders for update) s", "SX400", "error"),
  // Settings, roles and SQL run at execution time
  c("set_config role", "select set_config('role', 'sextant_t_globex', true)", "SX400", "42501"),
  c("set_config role session", "select set_config('role', 'sextant_t_globex', false)", "SX400", "42501"),
  c("set_config session_authorization", "select set_config('session_authorization', 'postgres', true)", "SX400", "42501"),
  c("set_config read-write", "select set_config('transaction_read_only', 'off', true)", "SX400", "error"),
  c("set_config search_path", "select set_config('search_path', 'globex_ops', true)", "SX400", "ok"),
  c("schema-qualified set_config", "select pg_catalog.set_config('role', 'postgres', true)", "SX400", "42501"),
  c("quoted set_config", 'select "set_config"(\'role\', \'postgres\', true)', "SX400", "42501"),
  c("set_config in lateral", "select * from acme_sales.orders, lateral (select set_config('role', 'sextant_t_globex', true)) s", "SX400", "42501"),
  c("query_to_xml other tenant", "select query_to_xml('select * from globex_ops.shipments', true, false, '')", "SX400", "42501"),
  c("query_to_xml set role", "select query_to_xml('select set_config(''role'', ''sextant_t_globex'', true)', true, false, '')", "SX400", "42501"),
  c("query_to_xml write", "select query_to_xml('delete from acme_sales.orders returning 1', true, false, '')", "SX400", "error"),
  c("query_to_xmlschema", "select query_to_xmlschema('select 1', true, false, '')", "SX400", "ok"),
  c("cursor_to_xml", "select cursor_to_xml('c', 1, true, false, '')", "SX400", "error"),
  c("table_to_xml other tenant", "select table_to_xml('globex_ops.shipments', true, false, '')", "SX400", "42501"),
  c("schema_to_xml other tenant", "select schema_to_xml('globex_ops', true, false, '')", "SX400", "42501"),
  c("database_to_xml", "select database_to_xml(true, false, '')", "SX400", "ok"), // only what the runner may read
  c("ts_stat with SQL text", "select * from ts_stat('select to_tsvector(secret_note) from globex_ops.shipments')", "SX400", "42501"),
  c("ts_rewrite with SQL text", "select ts_rewrite('a'::tsquery, 'select ''a''::tsquery, ''b''::tsquery')", "SX400", "ok"),
  c("nested sextant.query crossing", "select * from sextant.query('select * from globex_ops.shipments')", "42501", "42501"),
  c("other tenant runner", "select * from sextant_exec.run_query__globex('select * from globex_ops.shipments', 10, 0, 100000, 1e9, false)", "42501", "42501"),
  // Tenant crossing and private objects
  c("other tenant table", "select * from globex_ops.shipments", "42501", "42501"),
  c("other tenant table via union", "select id::text from acme_sales.orders union all select secret_note from globex_ops.shipments", "42501", "42501"),
  c("other tenant via subquery", "select (select secret_note from globex_ops.shipments limit 1)", "42501", "42501"),
  c("demo tenant table", "select * from shop.customers", "42501", "42501"),
  c("private token table", "select * from sextant_private.api_tokens", "42501", "42501"),
  c("private settings", "select * from sextant_private.settings", "42501", "42501"),
  c("private authenticate", "select * from sextant_private.authenticate_token('x')", "42501", "42501"),
  c("private create tenant", "select sextant_private.create_tenant('evil', 'x', '{}')", "42501", "42501"),
  c("pg_authid", "select rolpassword from pg_authid", "42501", "42501"),
  c("pg_shadow", "select passwd from pg_shadow", "42501", "42501"),
  c("pg_user_mappings options", "select umoptions from pg_user_mapping", "42501", "42501"),
  c("other tenants' rows via RLS table", "select slug from sextant.tenants where slug <> 'acme'", "ok", "ok"),
  c("other tenants' principals", "select name from sextant.principals where tenant_slug <> 'acme'", "ok", "ok"),
  c("audit of other tenants", "select sql from sextant.audit_events", "ok", "ok"),
  // Functions with effects beyond reading
  c("pg_sleep", "select pg_sleep(0.2)", "SX400", "ok"),
  c("pg_sleep_for", "select pg_sleep_for('200 milliseconds')", "SX400", "ok"),
  c("pg_sleep in from", "select * from pg_sleep(0.2)", "SX400", "ok"),
  c("advisory lock", "select pg_advisory_lock(42)", "SX400", "ok"),
  c("advisory xact lock", "select pg_advisory_xact_lock(42)", "SX400", "ok"),
  c("try advisory lock", "select pg_try_advisory_lock(1, 2)", "SX400", "ok"),
  c("lo_import", "select lo_import('/etc/passwd')", "SX400", "error"),
  c("lo_create", "select lo_create(0)", "SX400", "25006"),
  c("lo_get", "select lo_get(1)", "SX400", "error"),
  c("pg_read_file", "select pg_read_file('/etc/passwd')", "SX400", "42501"),
  c("pg_read_binary_file", "select pg_read_binary_file('postgresql.conf')", "SX400", "42501"),
  c("pg_ls_dir", "select pg_ls_dir('.')", "SX400", "42501"),
  c("pg_ls_logdir", "select * from pg_ls_logdir()", "SX400", "42501"),
  c("pg_stat_file", "select pg_stat_file('postgresql.conf')", "SX400", "42501"),
  c("pg_terminate_backend", "select pg_terminate_backend(pg_backend_pid())", "SX400", "42501"),
  c("pg_cancel_backend", "select pg_cancel_backend(1)", "SX400", "ok"),
  c("pg_reload_conf", "select pg_reload_conf()", "SX400", "42501"),
  c("pg_notify", "select pg_notify('chan', 'payload')", "SX400", "ok"),
  c("txid_current", "select txid_current()", "SX400", "ok"), // PostgreSQL assigns an id even read-only; no data changes
  c("pg_current_xact_id", "select pg_current_xact_id()", "SX400", "ok"),
  c("nextval", "select nextval('acme_sales.order_seq')", "SX400", "error"),
  c("setval", "select setval('acme_sales.order_seq', 1000)", "SX400", "error"),
  c("dblink", "select * from dblink('dbname=postgres', 'select 1') as t(x int)", "SX400", "42883"),
  c("dblink_exec", "select dblink_exec('dbname=postgres', 'drop table x')", "SX400", "42883"),
  c("pg_switch_wal", "select pg_switch_wal()", "SX400", "42501"),
  c("pg_create_restore_point", "select pg_create_restore_point('x')", "SX400", "42501"),
  c("pg_logical_emit_message", "select pg_logical_emit_message(true, 'x', 'y')", "SX400", "ok"), // granted to PUBLIC: WAL only, no data
  c("pg_stat_reset", "select pg_stat_reset()", "SX400", "42501"),
  c("pg_rotate_logfile", "select pg_rotate_logfile()", "SX400", "42501"),
  // Resource exhaustion
  c("huge cross join (cost budget)", "select count(*) from generate_series(1, 100000) a, generate_series(1, 100000) b, generate_series(1, 1000) c", "SX413", "SX413"),
  c("infinite recursion (timeout)", "with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) from r", "57014", "57014"),
  c("wide repeat (byte cap)", "select repeat('x', 1000000) from generate_series(1, 50)", "ok", "ok"),
  // Information about other sessions
  c("other sessions' query text", "select query from pg_stat_activity where usename = 'sextant_authenticator' and pid <> pg_backend_pid() and query not like '<insufficient%'", "ok", "ok"),
  c("other sessions' settings", "select setting from pg_settings where name in ('data_directory', 'config_file', 'hba_file')", "ok", "ok"),
  c("prepared statements of others", "select statement from pg_prepared_statements", "ok", "ok"),
  c("server log location", "select pg_current_logfile()", "42501", "42501"),
  // Transaction and session control (never a single SELECT)
  c("begin", "begin", "SX400", "42P11"),
  c("set transaction read write", "set transaction read write", "SX400", "42P11"),
  c("set session read write", "set session characteristics as transaction read write", "SX400", "42P11"),
  c("listen", "listen chan", "SX400", "42P11"),
  c("prepare", "prepare p as select 1", "SX400", "42P11"),
  c("execute", "execute p", "SX400", "42P11"),
  c("deallocate all", "deallocate all", "SX400", "42P11"),
  c("discard all", "discard all", "SX400", "42P11"),
  c("lock table", "lock table acme_sales.orders", "SX400", "42P11"),
  c("vacuum", "vacuum acme_sales.orders", "SX400", "42P11"),
  c("analyze", "analyze acme_sales.orders", "SX400", "42P11"),
  c("checkpoint", "checkpoint", "SX400", "42P11"),
  c("load library", "load 'auto_explain'", "SX400", "42P11"),
  c("explain analyze a delete", "explain analyze delete from acme_sales.orders", "SX400", "42601"), // refused before the cursor is read
  c("show all", "show all", "SX400", "42601"),
  c("set search_path", "set search_path = globex_ops", "SX400", "42P11"),
  c("create temp function", "create function pg_temp.f() returns int language sql as 'select 1'", "SX400", "42P11"),
  // Parser edge cases
  c("syntax error", "selec 1", "SX400", "42601"),
  c("empty", "   ", "SX400", "SX400"),
  c("only a comment", "-- nothing", "SX400", "error"),
  c("unterminated string", "select 'abc", "SX400", "42601"),
  c("unterminated dollar quote", "select $$abc", "SX400", "42601"),
  c("parameter placeholder", "select $1", "42P02", "42P02"),
  c("unicode escape identifier", 'select * from U&"globex\\005fops".shipments', "42501", "42501"),
];
