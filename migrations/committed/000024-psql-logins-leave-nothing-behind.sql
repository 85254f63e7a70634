--! Previous: sha1:607cecc521a23e431690b607826cd5208c2ff3e2
--! Hash: sha1:e821ea86bdb3250e9bdab9b5992d711e35b7e07c
--! Message: psql logins leave nothing behind: no temporary objects, large objects, CREATE or sequence writes for tenant roles

-- A "read-only" analyst login could `begin read write` and create temporary tables, functions
-- and large objects that outlived its session (default_transaction_read_only is only a default
-- the login may change). What keeps such a login read-only is privileges, so it gets none
-- that write.

-- PostgreSQL grants TEMPORARY on every database to PUBLIC. Nothing of Sextant's but the
-- migrator (thesaurus staging, src/dbt/thesaurus.ts) uses temporary tables: the server, the
-- worker and the builders run without them. The database owner keeps its own rights.
do $$
begin
  execute format('revoke temporary, create on database %I from public', current_database());
  execute format('grant temporary on database %I to %I', current_database(), current_user);
end
$$;

-- Large objects are rows of pg_largeobject that belong to no schema and stay after the session
-- that made them; the functions that create or write them are granted to PUBLIC. Revoking
-- needs the functions' owner (a superuser); an admin that is not one is told what to run.
do $$
declare
  v_fn regprocedure;
begin
  if not (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
    raise warning 'large objects: only a superuser can revoke EXECUTE on lo_create, lo_creat, lo_import, lo_from_bytea, lo_put, lowrite, lo_open, lo_truncate and lo_unlink from PUBLIC; run this migration''s second step as one';
    return;
  end if;
  for v_fn in
    select p.oid::regprocedure from pg_catalog.pg_proc as p
    where p.pronamespace = 'pg_catalog'::regnamespace
      and (p.proname like 'lo\_%' or p.proname in ('loread', 'lowrite'))
  loop
    execute format('revoke execute on function %s from public', v_fn);
  end loop;
end
$$;

-- No tenant role may create objects in any schema: CREATE on public was revoked from PUBLIC in
-- 000001; schemas mapped to a tenant (which may have existed before Sextant, with their own
-- grants) lose CREATE for PUBLIC too (sql/tenants.sql's map_schema does the same from now on).
do $$
declare
  v_schema text;
begin
  for v_schema in select s.schema_name from sextant.tenant_schemas as s
                  where exists (select from pg_catalog.pg_namespace as n where n.nspname = s.schema_name)
  loop
    execute format('revoke create on schema %I from public', v_schema);
  end loop;
end
$$;

-- Tenant readers had USAGE on their schemas' sequences, and USAGE allows nextval(): a login in
-- a read-write transaction moved tenants' sequences. SELECT (last_value) is what reading needs.
do $$
declare
  v_seq record;
begin
  for v_seq in
    select n.nspname, c.relname, t.reader_role
    from sextant.tenant_schemas as s
    join sextant.tenants as t on t.slug = s.tenant_slug
    join pg_catalog.pg_namespace as n on n.nspname = s.schema_name
    join pg_catalog.pg_class as c on c.relnamespace = n.oid and c.relkind = 'S'
  loop
    execute format('revoke usage, update on sequence %I.%I from %I', v_seq.nspname, v_seq.relname, v_seq.reader_role);
  end loop;
end
$$;
