--! Previous: sha1:94e08856c1a4584055cd83627577c3940ed111b7
--! Hash: sha1:3a0774a8a1781282e98071de9908e4bbacb13a3c
--! Message: Search: the sign bits of each node's vector, for a cheap first pass (Hamming distance) before the exact comparison

-- Search: the sign of each dimension of a node's vector (1 bit per dimension). Without pgvector,
-- comparing whole vectors in SQL costs about 0.2 µs per number (75 ms for 384 nodes at 1,536
-- dimensions); the Hamming distance of the signs picks the candidates cheaply, and only those
-- are compared exactly (sql/dbt.sql, search_dbt_models).

set local role sextant_owner;

alter table sextant.dbt_embeddings add column if not exists signs bit varying;
update sextant.dbt_embeddings as e
set signs = array_to_string(array(select case when x > 0 then '1' else '0' end
                                  from unnest(e.embedding) with ordinality as t(x, k) order by k), '')::bit varying
where e.signs is null;
alter table sextant.dbt_embeddings alter column signs set not null;

reset role;
