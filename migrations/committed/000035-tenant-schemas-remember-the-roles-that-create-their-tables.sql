--! Previous: sha1:2971a371e3bd6b3cbd08a0129626d68accf06811
--! Hash: sha1:9e013015e9b5f838940efa57fe685f62c8e61234
--! Message: tenant schemas remember the roles that create their tables

-- A tenant may be given a schema that other roles fill (public, the schema dbt builds into).
-- Tables those roles create later become readable through default privileges FOR ROLE each of
-- them; the list is kept so that map_schema and apply_table_filters can grant (or, while the
-- tenant has table filters, withhold) those defaults again. See sql/tenants.sql.
alter table sextant.tenant_schemas add column if not exists table_owners text[] not null default '{}';
comment on column sextant.tenant_schemas.table_owners is
  E'Roles besides the schema''s owner and Sextant''s whose new tables in this schema the tenant reads (default privileges).';
