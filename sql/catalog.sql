-- Area: catalog. Tools: whoami, list_schemas (MCP), Query.whoami / Query.listSchemas
-- (GraphQL), and the same functions from psql.
-- Invariants:
--   * everything reads pg_catalog directly and filters by the current role's privileges, so a
--     tenant sees only what it could read anyway;
--   * identity comes from the current role; jwt.claims.* is shown for audit, never trusted.

set role sextant_owner;

create or replace view sextant.identities with (security_invoker = true) as
  select sextant.current_tenant() as tenant,
         sextant.current_access_level() as access_level,
         current_user::text as database_role,
         nullif(current_setting('jwt.claims.sub', true), '') as principal,
         nullif(current_setting('jwt.claims.auth', true), '') as auth_method,
         current_database()::text as database_name,
         current_setting('server_version') as server_version,
         current_setting('transaction_read_only') = 'on' as read_only;
comment on view sextant.identities is E'@behavior -list -connection\nThe current identity, one row (backs whoami).';
comment on column sextant.identities.tenant is E'Tenant slug, derived from the database role.';
comment on column sextant.identities.access_level is E'viewer, analyst or admin, derived from the database role.';
comment on column sextant.identities.principal is E'Who the server authenticated (person or agent), for audit; not used for access.';
grant select on sextant.identities to sextant_tenant_reader;

create or replace function sextant.whoami()
returns sextant.identities
language sql stable
as $$
  select * from sextant.identities;
$$;
comment on function sextant.whoami() is
  E'Who you are to Sextant: tenant, access level, database role, principal and database.';
grant execute on function sextant.whoami() to sextant_tenant_reader;

create or replace view sextant.schemas with (security_invoker = true) as
  select n.nspname::text as schema_name,
         ts.tenant_slug as tenant,
         coalesce(ts.provisioned, false) as provisioned,
         ts.expires_at,
         obj_description(n.oid, 'pg_namespace') as description,
         (select count(*)
            from pg_catalog.pg_class as c
           where c.relnamespace = n.oid
             and c.relkind in ('r', 'p', 'v', 'm', 'f')
             and has_table_privilege(c.oid, 'select'))::integer as table_count
  from pg_catalog.pg_namespace as n
  left join sextant.tenant_schemas as ts on ts.schema_name = n.nspname
  where has_schema_privilege(n.oid, 'usage')
    and n.nspname not in ('sextant', 'sextant_private', 'sextant_exec', 'information_schema', 'pg_catalog', 'pg_toast')
    and n.nspname not like 'pg\_%'
    and n.nspname not like 'graphile\_%'
    -- public is usable by everyone by default: list it only when it is mapped to the tenant.
    and (n.nspname <> 'public' or ts.schema_name is not null);
comment on view sextant.schemas is E'@behavior -list -connection\nSchemas the current role can use, with their tenant.';
grant select on sextant.schemas to sextant_tenant_reader;

create or replace function sextant.list_schemas()
returns setof sextant.schemas
language sql stable
as $$
  select * from sextant.schemas order by schema_name;
$$;
comment on function sextant.list_schemas() is
  E'Schemas your tenant can read, with the number of readable tables and views in each.';
grant execute on function sextant.list_schemas() to sextant_tenant_reader;

reset role;
