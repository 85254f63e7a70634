--! Previous: sha1:c7d49a189bcf1a63a2f4fea027462045ac0d57fb
--! Hash: sha1:942ef4906a675d18b4017650be3d4bc748f17022
--! Message: search: document frequency of stems per dbt project

-- Search: how many nodes of a project use each stem, kept at load time, so that search reads
-- document frequencies by index instead of scanning every node's lexemes (row-level security
-- keeps the planner from using the GIN index for that).

set local role sextant_owner;

create table if not exists sextant.dbt_lexemes (
  project_id uuid not null references sextant.dbt_projects on delete cascade,
  tenant_slug text not null references sextant.tenants on delete cascade,
  stem text not null,
  df integer not null,
  primary key (project_id, stem)
);
comment on table sextant.dbt_lexemes is E'@behavior -*\nHow many nodes of a dbt project use each word stem (for search ranking).';
create index if not exists dbt_lexemes_stem on sextant.dbt_lexemes (stem);
alter table sextant.dbt_lexemes enable row level security;
drop policy if exists select_own_tenant on sextant.dbt_lexemes;
create policy select_own_tenant on sextant.dbt_lexemes for select using (tenant_slug = (select sextant.current_tenant()));
grant select on sextant.dbt_lexemes to sextant_tenant_reader;

insert into sextant.dbt_lexemes (project_id, tenant_slug, stem, df)
select n.project_id, min(n.tenant_slug), l.stem, count(*)
from sextant.dbt_nodes as n, unnest(tsvector_to_array(n.search)) as l(stem)
group by n.project_id, l.stem
on conflict do nothing;

reset role;
