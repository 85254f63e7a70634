--! Previous: sha1:9e013015e9b5f838940efa57fe685f62c8e61234
--! Hash: sha1:e2106d1ac9ac490e9ce2ac398871ddc5e0b00b5e
--! Message: uninstall remembers what Sextant changed in the user's database

-- `sextant uninstall` puts back what Sextant changed on objects it did not create. map_schema
-- revokes CREATE from PUBLIC on a schema it is given (sql/tenants.sql): the schema's ACL as it
-- was before is kept here (null: Sextant created the schema, or it had the default ACL).
alter table sextant.tenant_schemas add column if not exists acl_before text;
comment on column sextant.tenant_schemas.acl_before is
  E'The schema''s ACL before it was mapped (restored by `sextant uninstall`); null when Sextant created it.';
