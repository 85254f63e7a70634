--! Previous: sha1:9b265ef60a168a681d5758d09c4f8b058b55236f
--! Hash: sha1:f370f53df19f2ce04ae35a0e4140368a31811aba
--! Message: search: postings without foreign keys (load time)

-- Search index: no foreign keys or primary key on the postings. Checking two foreign keys for
-- each of a large project's 100,000s of postings cost seconds per load; the rows are made by
-- one GROUP BY (unique already) and go with their project by a trigger (sql/dbt.sql).

set local role sextant_owner;
alter table sextant.dbt_postings
  drop constraint if exists dbt_postings_project_id_fkey,
  drop constraint if exists dbt_postings_tenant_slug_fkey,
  drop constraint if exists dbt_postings_pkey;
create index if not exists dbt_postings_project on sextant.dbt_postings (project_id);
reset role;
