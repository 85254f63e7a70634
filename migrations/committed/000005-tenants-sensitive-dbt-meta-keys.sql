--! Previous: sha1:0c735662c06a8538edf3638aae1ad9ed38d5ab8f
--! Hash: sha1:a251dfe22743400b80d10f8b033a0516cb8df688
--! Message: tenants: sensitive dbt meta keys

-- Columns that dbt marks as sensitive: these meta keys (or tags) on a documented column make
-- Sextant mask it in samples and flag it in describe_table, like a sensitive-looking name.
alter table sextant.tenants
  add column if not exists sensitive_meta_keys text[] not null default array['pii', 'sensitive', 'contains_pii', 'is_pii'];
