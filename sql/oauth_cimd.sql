-- Client ID Metadata Documents (the MCP authorization spec's preferred registration): a client
-- whose client_id is the https URL of a JSON document describing it. The server fetches and
-- checks the document (src/oauth/clientMetadataDocument.ts: bounded, through the pipeline
-- sources' address check); this keeps the client's row, which codes and grants reference,
-- refreshed from each fetch.

-- Owned by sextant_owner like every other OAuth function (never by the migrating superuser); an
-- install that made it before this line was added gets it handed over first.
do $$
begin
  if to_regprocedure('sextant_private.oauth_metadata_document_client(text, jsonb)') is not null then
    alter function sextant_private.oauth_metadata_document_client(text, jsonb) owner to sextant_owner;
  end if;
end
$$;

set role sextant_owner;
create or replace function sextant_private.oauth_metadata_document_client(client_id text, metadata jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if length(client_id) > 2000 or client_id !~* '^https?://[^/?#@\s\\]+/[^#\s\\]+$' then
    raise exception 'a client metadata document URL must be an https URL with a path' using errcode = 'SX400';
  end if;
  if metadata ->> 'client_id' is distinct from client_id then
    raise exception 'the client metadata document names another client_id' using errcode = 'SX400';
  end if;
  -- The same checks as a registration (size, count, redirect URIs), run on a scratch row that is
  -- rolled back: one set of rules for both ways of becoming a client.
  begin
    perform sextant_private.oauth_register_client(client_id || '#check', null, metadata);
    raise sqlstate 'SXOK1';
  exception when sqlstate 'SXOK1' then
    null;
  end;
  insert into sextant_private.oauth_clients as c (client_id, client_secret_hash, metadata)
  values (client_id, null, metadata)
  on conflict on constraint oauth_clients_pkey do update set metadata = excluded.metadata
  where c.client_secret_hash is null;
end
$$;
revoke all on function sextant_private.oauth_metadata_document_client(text, jsonb) from public;
grant execute on function sextant_private.oauth_metadata_document_client(text, jsonb) to sextant_authenticator;

reset role;
