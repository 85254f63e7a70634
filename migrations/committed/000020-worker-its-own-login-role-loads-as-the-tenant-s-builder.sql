--! Previous: sha1:8c9bea47ba94c4759b2ac91a5fb87c4b1d3dd682
--! Hash: sha1:42eceaec8c0373d2c91dc4d6146c5fb3098688ae
--! Message: worker: its own login role; loads run as the tenant's builder login

-- The pipeline worker logged in with the installing (often superuser) URL and only set
-- `role sextant_worker`, so SQL injected anywhere in its session could `set role postgres`
-- and run `copy ... to program` as the database superuser. From now on sextant_worker is a
-- LOGIN role of its own (password generated at migrate time, src/db/migrate.ts): not
-- superuser, no CREATEROLE, NOINHERIT, and a member of no tenant role (sql/materialize.sql's
-- install_builder revokes the builders from it): what it reaches is the graphile_worker schema
-- it owns and the sextant_private functions granted to it. Loads and the swap run in a
-- separate session logged in as the tenant's builder (a login of its own, member only of its
-- tenant's reader role), so an injection while loading reaches that tenant and nothing else.
alter role sextant_worker with login noinherit nocreaterole nocreatedb;

set local role sextant_owner;

-- The worker calls render_model and the builders' functions in sextant_exec itself (it reached
-- them through the builder roles it no longer belongs to).
grant usage on schema sextant_exec to sextant_worker;

-- A postgres source's connection string written inline (with its password) was shown to every
-- viewer of the tenant (allPipelines { source }). Such strings become a pipeline secret named
-- connection_string, as `set_pipeline_secret` would store it; the definition refers to it.
-- (Writes of new inline passwords are refused from now on: sql/materialize.sql, pipeline_guard.)
insert into sextant_private.pipeline_secrets (pipeline_id, name, ciphertext)
select p.id, 'connection_string',
       public.pgp_sym_encrypt(p.source ->> 'connection_string', (select s.value from sextant_private.settings as s where s.key = 'secret_key'))
from sextant.pipelines as p
where jsonb_typeof(p.source -> 'connection_string') = 'string'
on conflict (pipeline_id, name) do update set ciphertext = excluded.ciphertext, updated_at = now();
update sextant.pipelines as p
set source = jsonb_set(p.source, '{connection_string}', '{"secret": "connection_string"}')
where jsonb_typeof(p.source -> 'connection_string') = 'string';

reset role;
