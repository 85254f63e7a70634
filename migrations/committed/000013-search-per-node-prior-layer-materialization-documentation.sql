--! Previous: sha1:7ecdddcd06a682feed4a9f64ccb69ed8cc1b8164
--! Hash: sha1:9b265ef60a168a681d5758d09c4f8b058b55236f
--! Message: search: per-node prior (layer, materialization, documentation)

-- Search: a per-node prior kept at load time. Models an analyst can query and that are
-- documented rank above staging/intermediate steps, ephemeral models (not in the database)
-- and undocumented nodes when the words match equally (see sextant_private.index_dbt_search).

set local role sextant_owner;
alter table sextant.dbt_nodes add column if not exists search_prior real;
comment on column sextant.dbt_nodes.search_prior is E'@behavior -*';
reset role;
