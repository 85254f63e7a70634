--! Previous: sha1:01a3f08d3ea8ee53c3c2df824be40bac8cd2ac87
--! Hash: sha1:94e08856c1a4584055cd83627577c3940ed111b7
--! Message: Search: vectors of dbt nodes from an optional embeddings endpoint (real[], unit length, per tenant under RLS); search_dbt_models takes the question's vector

-- Search: vectors of a dbt project's nodes from an embeddings endpoint (optional,
-- SEXTANT_EMBEDDINGS_URL), filled after a load; search blends them with its lexical ranking when
-- the caller passes the question's vector. One row per node, unit length, so cosine similarity is
-- a dot product. Plain real[]: the embedded PostgreSQL has no pgvector.

set local role sextant_owner;

create table if not exists sextant.dbt_embeddings (
  project_id uuid not null references sextant.dbt_projects on delete cascade,
  tenant_slug text not null references sextant.tenants on delete cascade,
  unique_id text not null,
  -- the endpoint's model name: vectors of different models are never compared
  model text not null,
  embedding real[] not null,
  primary key (project_id, unique_id)
);
comment on table sextant.dbt_embeddings is E'@behavior -*\nVectors of dbt nodes from the configured embeddings endpoint (unit length), for search.';
create index if not exists dbt_embeddings_tenant on sextant.dbt_embeddings (tenant_slug);
alter table sextant.dbt_embeddings enable row level security;
drop policy if exists select_own_tenant on sextant.dbt_embeddings;
create policy select_own_tenant on sextant.dbt_embeddings for select using (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.dbt_embeddings to sextant_tenant_reader;

-- search_dbt_models takes the question's vector as an optional third argument (sql/dbt.sql).
drop function if exists sextant.search_dbt_models(text, integer);

reset role;
