--! Previous: sha1:f370f53df19f2ce04ae35a0e4140368a31811aba
--! Hash: sha1:c68478a14681795b864b46e69e3c67c83e0acb30
--! Message: search: drop the combined search vector and the dbt_nodes indexes search no longer reads

-- Search reads sextant.dbt_postings now: the combined search vector of a node and the GIN
-- full-text and trigram indexes on dbt_nodes are no longer read (row-level security kept them
-- from being used for tenants anyway), and maintaining them slowed every load.

set local role sextant_owner;
drop index if exists sextant.dbt_nodes_search_idx;
drop index if exists sextant.dbt_nodes_name_trgm_idx;
alter table sextant.dbt_nodes drop column if exists search;
reset role;
