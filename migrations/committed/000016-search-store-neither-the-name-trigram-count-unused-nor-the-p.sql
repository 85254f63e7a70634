--! Previous: sha1:c68478a14681795b864b46e69e3c67c83e0acb30
--! Hash: sha1:01a3f08d3ea8ee53c3c2df824be40bac8cd2ac87
--! Message: search: store neither the name trigram count (unused) nor the prior (derived where needed)

-- Search: a node's name trigram count is no longer read (names are compared with pg_trgm
-- itself), and its prior is computed from the node's own columns where it is needed
-- (sextant_exec.dbt_search_prior), so neither is stored.

set local role sextant_owner;
alter table sextant.dbt_nodes drop column if exists name_trigrams, drop column if exists search_prior;
reset role;
