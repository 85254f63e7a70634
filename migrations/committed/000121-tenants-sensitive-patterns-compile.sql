--! Previous: sha1:b5960099337c986b4ab9251f2343bac6a01cc19f
--! Hash: sha1:ae1302d58e3edd66adb363cde045408cadd1f000
--! Message: tenants: every sensitive-column pattern compiles

set local role sextant_owner;

-- Every sensitive-column pattern compiles on its own, for every write from now on (rows already
-- stored are not checked: NOT VALID; `sextant tenant update` has always checked its input). The
-- pattern rule joins a tenant's patterns into one regular expression (sql/catalog.sql,
-- names_matching), which keeps each one's meaning only when each one is valid by itself: "a)|(b"
-- fails alone and would not once wrapped.
create or replace function sextant_private.patterns_compile(patterns text[])
returns boolean
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  p text;
begin
  foreach p in array coalesce(patterns, '{}') loop
    begin
      perform '' ~* p;
    exception when invalid_regular_expression then
      return false;
    end;
  end loop;
  return true;
end
$$;
comment on function sextant_private.patterns_compile(text[]) is
  E'Whether every one of these is a valid regular expression (tenants.sensitive_column_patterns).';

alter table sextant.tenants
  add constraint tenants_sensitive_column_patterns_compile
  check (sextant_private.patterns_compile(sensitive_column_patterns)) not valid;

reset role;
