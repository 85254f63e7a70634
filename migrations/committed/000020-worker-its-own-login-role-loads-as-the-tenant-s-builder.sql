--! Previous: sha1:8c9bea47ba94c4759b2ac91a5fb87c4b1d3dd682
--! Hash: sha1:df42d9d91930343736b35cd71394888c3d4ffcd8
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

reset role;
