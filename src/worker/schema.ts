import pg from "pg";

/**
 * Installs or upgrades graphile-worker's schema (as the admin), then lets the worker role use
 * it and sextant_owner enqueue into it (the triggers in sql/materialize_pipelines.sql call add_job).
 */
export async function installWorkerSchema(adminUrl: string): Promise<void> {
  // Loaded here: a start on a migrated database does not run this step (src/db/migrate.ts).
  const { Logger, runMigrations } = await import("graphile-worker");
  const quiet = new Logger(() => () => {});
  const pool = new pg.Pool({ connectionString: adminUrl, max: 1 });
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  try {
    await runMigrations({ pgPool: pool, logger: quiet });
    // graphile-worker enables row level security on its tables (no policies): only their owner
    // may use them. sextant_worker owns them; sextant_owner is a member of it, so the triggers
    // in sql/materialize_pipelines.sql can enqueue jobs.
    await pool.query(`
      do $$
      declare
        o record;
      begin
        alter schema graphile_worker owner to sextant_worker;
        for o in select c.oid::regclass::text as name, c.relkind from pg_class c
                 where c.relnamespace = 'graphile_worker'::regnamespace and c.relkind in ('r', 'v')
                   and pg_get_userbyid(c.relowner) <> 'sextant_worker' loop
          execute format('alter %s %s owner to sextant_worker',
                         case o.relkind when 'v' then 'view' else 'table' end, o.name);
        end loop;
        for o in select p.oid::regprocedure::text as name from pg_proc p
                 where p.pronamespace = 'graphile_worker'::regnamespace and pg_get_userbyid(p.proowner) <> 'sextant_worker' loop
          execute format('alter routine %s owner to sextant_worker', o.name);
        end loop;
        for o in select t.oid::regtype::text as name from pg_type t
                 where t.typnamespace = 'graphile_worker'::regnamespace and t.typtype in ('c', 'e', 'd') and t.typrelid = 0
                   and pg_get_userbyid(t.typowner) <> 'sextant_worker' loop
          execute format('alter type %s owner to sextant_worker', o.name);
        end loop;
      end
      $$;
      grant sextant_worker to sextant_owner;`);
  } finally {
    await pool.end();
  }
}
