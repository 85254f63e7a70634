--! Previous: sha1:ac7606a260b7fca982b246e1e4119fe228e1933d
--! Hash: sha1:444484c785f399b09fd8c035b87033403e74febf
--! Message: sources: describe_table finds a source's table by its local name

set local role sextant_owner;

-- describe_table (sql/catalog_tables.sql) looks a source's table up by its local schema and name.
create index if not exists source_tables_local on sextant.source_tables (local_schema, table_name);

reset role;
