--! Previous: sha1:5d7651895a1814413cf74fb7fa83b4b5eb48484a
--! Hash: sha1:7ecdddcd06a682feed4a9f64ccb69ed8cc1b8164
--! Message: search: inverted index of dbt projects (stems and name trigrams)

-- Search: an inverted index of each dbt project (term → nodes), so that search reads the few
-- nodes that use the question's words through an index instead of testing every node's text
-- (row-level security keeps the planner from using full-text and trigram indexes for tenants;
-- text equality is leakproof, so this index stays usable). Filled at load time.

set local role sextant_owner;

create table if not exists sextant.dbt_postings (
  project_id uuid not null references sextant.dbt_projects on delete cascade,
  tenant_slug text not null references sextant.tenants on delete cascade,
  -- an English stem of the node's text, or '#' and a trigram of its name (typos, partial names)
  term text not null,
  unique_id text not null,
  -- sum of the weights of the fields the stem occurs in: name 3, description 1.5, columns 0.7, tags and SQL 0.3
  weight real not null,
  -- bits: 1 name, 2 description, 4 columns, 8 tags or SQL, 16 name trigram
  fields smallint not null,
  primary key (project_id, term, unique_id)
);
comment on table sextant.dbt_postings is E'@behavior -*\nWhich nodes of a dbt project use each word stem or name trigram (search index).';
create index if not exists dbt_postings_tenant_term on sextant.dbt_postings (tenant_slug, term) include (unique_id, weight, fields);
alter table sextant.dbt_postings enable row level security;
drop policy if exists select_own_tenant on sextant.dbt_postings;
create policy select_own_tenant on sextant.dbt_postings for select using (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.dbt_postings to sextant_tenant_reader;

-- How many distinct trigrams a node's name has (trigram similarity needs it), and how many
-- searchable nodes a project has (for idf); both kept at load time.
alter table sextant.dbt_nodes add column if not exists name_trigrams smallint;
alter table sextant.dbt_projects add column if not exists searchable_nodes integer;

reset role;
