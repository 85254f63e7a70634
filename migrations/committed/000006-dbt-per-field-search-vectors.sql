--! Previous: sha1:a251dfe22743400b80d10f8b033a0516cb8df688
--! Hash: sha1:8c3a149265e4897bb950ab8991fe0624a7ea4ff2
--! Message: dbt: per-field search vectors

-- Per-field search vectors, computed at load: search scores each query word by the field it
-- occurs in (name, description, columns, tags and SQL) without re-parsing text per query.
alter table sextant.dbt_nodes
  add column if not exists search_name tsvector,
  add column if not exists search_description tsvector,
  add column if not exists search_columns tsvector,
  add column if not exists search_rest tsvector;
