-- A large catalog for the benchmark: 20 schemas x 100 tables, 15-40 columns each, with
-- comments, primary keys, a foreign key to the previous table, and an index. Deterministic.
do $$
declare
  s int; t int; ncols int; cols text; tbl text;
begin
  for s in 1..20 loop
    execute format('create schema if not exists bench_s%s authorization sextant_owner', s);
    execute format('comment on schema bench_s%s is %L', s, 'Benchmark schema ' || s);
    for t in 1..100 loop
      ncols := 15 + ((s * 7 + t * 13) % 26);
      select string_agg(format('c%s %s', i, (array['integer','text','numeric(12,2)','timestamptz','boolean','bigint'])[1 + (i % 6)]), ', ')
        into cols from generate_series(1, ncols) as i;
      tbl := format('bench_s%s.t%s', s, t);
      execute format('create table %s (id bigint primary key, parent_id bigint, %s)', tbl, cols);
      execute format('comment on table %s is %L', tbl, 'Generated table ' || t || ' of schema ' || s || ' for catalog benchmarks');
      execute format('comment on column %s.c1 is %L', tbl, 'First payload column');
      if t > 1 then
        execute format('alter table %s add foreign key (parent_id) references bench_s%s.t%s (id)', tbl, s, t - 1);
      end if;
      execute format('create index on %s (c2)', tbl);
    end loop;
  end loop;
end
$$;

-- 1,000 rows of data in one wide table (35 columns), values chosen by column type.
do $$
declare
  v_cols text;
  v_vals text;
begin
  select string_agg(quote_ident(a.attname), ', ' order by a.attnum),
         string_agg(case format_type(a.atttypid, a.atttypmod)
                      when 'text' then format('''value '' || i || '' of %s''', a.attname)
                      when 'integer' then 'i'
                      when 'bigint' then 'i * 1000'
                      when 'numeric(12,2)' then 'i * 1.25'
                      when 'timestamp with time zone' then 'timestamptz ''2025-01-01'' + i * interval ''1 hour'''
                      when 'boolean' then 'i % 2 = 0'
                    end, ', ' order by a.attnum)
    into v_cols, v_vals
  from pg_attribute as a
  where a.attrelid = 'bench_s1.t1'::regclass and a.attnum > 0 and not a.attisdropped
    and a.attname not in ('id', 'parent_id');
  execute format('insert into bench_s1.t1 (id, %s) select i, %s from generate_series(1, 1000) as i', v_cols, v_vals);
end
$$;
analyze;
