--! Previous: sha1:3a0774a8a1781282e98071de9908e4bbacb13a3c
--! Hash: sha1:8c9bea47ba94c4759b2ac91a5fb87c4b1d3dd682
--! Message: Search: search_dbt_models takes the embeddings model of the question's vector

-- Search: search_dbt_models takes the embeddings model of the question's vector, so vectors of
-- another model with the same length are never compared (sql/dbt.sql makes the new function).

set local role sextant_owner;

drop function if exists sextant.search_dbt_models(text, integer, real[]);

reset role;
