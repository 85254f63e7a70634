-- The bench's large catalog, built one schema per call (one transaction each, so the lock
-- table never holds 2,000 tables): select pg_temp.bench_catalog_schema(n) for n in 1..20.
-- Schema catalog_NN holds 100 tables t001..t100 of 15-39 columns, each with a table comment,
-- a comment on every column, a bigint primary key, a foreign key to the table before it and an
-- index; catalog_01 also holds wide_snapshot, 40 commented columns (the describe op's table).
-- Deterministic (no random()): column counts and types come from the numbers alone.
create or replace function pg_temp.bench_catalog_schema(s integer)
returns void
language plpgsql
as $$
declare
  types text[] := array['integer', 'text', 'numeric(12,2)', 'timestamptz', 'boolean', 'bigint', 'varchar(64)', 'date', 'jsonb'];
  sch text := format('catalog_%s', lpad(s::text, 2, '0'));
  tbl text;
  cols text;
  ncols integer;
begin
  execute format('create schema %I', sch);
  execute format('comment on schema %I is %L', sch, format('Generated schema %s of the bench''s 2,000-table catalog', s));
  for t in 1..100 loop
    tbl := format('t%s', lpad(t::text, 3, '0'));
    ncols := 13 + (s * 7 + t * 13) % 25; -- plus id and parent_id: 15..39 columns
    select string_agg(format('c%s_%s %s', i, split_part(types[1 + (i + t) % 9], '(', 1), types[1 + (i + t) % 9]), ', ')
      into cols from generate_series(1, ncols) as i;
    execute format('create table %I.%I (id bigint primary key, parent_id bigint, %s)', sch, tbl, cols);
    execute format('comment on table %I.%I is %L', sch, tbl, format('Generated table %s of schema %s', t, sch));
    execute (select string_agg(format('comment on column %I.%I.%I is %L', sch, tbl, a.attname,
                                      format('Column %s of %s.%s', a.attname, sch, tbl)), '; ')
               from pg_catalog.pg_attribute as a
              where a.attrelid = format('%I.%I', sch, tbl)::regclass and a.attnum > 0);
    if t > 1 then
      execute format('alter table %I.%I add foreign key (parent_id) references %I.%I (id)', sch, tbl, sch, format('t%s', lpad((t - 1)::text, 3, '0')));
    end if;
    execute format('create index on %I.%I (parent_id)', sch, tbl);
    execute format('insert into %I.%I (id, parent_id) select i, null from generate_series(1, %s) as i', sch, tbl, t % 5);
  end loop;
  if s = 1 then
    select string_agg(format('c%s %s', i, types[1 + i % 9]), ', ') into cols from generate_series(1, 37) as i;
    execute format('create table %I.wide_snapshot (id bigint primary key, parent_id bigint references %I.t001 (id), '
                   'taken_at timestamptz not null default now(), %s)', sch, sch, cols);
    execute format('comment on table %I.wide_snapshot is %L', sch, 'A snapshot with 40 commented columns');
    execute (select string_agg(format('comment on column %I.wide_snapshot.%I is %L', sch, a.attname,
                                      format('What column %s of the snapshot holds', a.attname)), '; ')
               from pg_catalog.pg_attribute as a
              where a.attrelid = format('%I.wide_snapshot', sch)::regclass and a.attnum > 0);
    execute format('create index on %I.wide_snapshot (taken_at)', sch);
    execute format('insert into %I.wide_snapshot (id) select i from generate_series(1, 50) as i', sch);
  end if;
end
$$;
