--! Previous: sha1:a42fcaa5111ada9471a60dfd9bb731dd789291b4
--! Hash: sha1:827ec35abf318d7614d4b754851621961a387b56
--! Message: api tokens may carry the MCP tool groups they are for

-- An API token may name the MCP tool groups it is for (null: all). The groups a client asks for
-- by header or ?groups= are intersected with these: a header can narrow a token, never widen it.

set local role sextant_owner;

alter table sextant_private.api_tokens add column if not exists tool_groups text[];
alter table sextant_private.api_tokens drop constraint if exists api_tokens_tool_groups_check;
alter table sextant_private.api_tokens add constraint api_tokens_tool_groups_check check (
  tool_groups is null or (
    cardinality(tool_groups) between 1 and 5
    and tool_groups <@ array['catalog', 'query', 'dbt', 'knowledge', 'materialization']::text[]));

do $$
begin
  if not exists (
    select from pg_catalog.pg_attribute
    where attrelid = 'sextant_private.token_principal'::regclass and attname = 'tool_groups' and not attisdropped
  ) then
    alter type sextant_private.token_principal add attribute tool_groups text[];
  end if;
end
$$;

reset role;
