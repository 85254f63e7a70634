import { spawnSync } from "node:child_process";
import type { Command } from "commander";
import { withContext } from "../context.ts";

/** `sextant psql [--tenant]`: psql on the database, optionally as a tenant's read-only role. */
export default function register(program: Command): void {
  program
    .command("psql")
    .description("open psql on the database, as admin or (with --tenant) as the tenant's read-only role")
    .option("--tenant <slug>", "act as this tenant's reader role, read-only")
    .argument("[psql-args...]", "passed to psql as they are (e.g. -c 'select 1'; put -- before them if one is --tenant)")
    // Options of psql's own (-c, -f, -A, ...) are not ours: hand them over instead of refusing them.
    .allowUnknownOption()
    .action((psqlArgs: string[], opts: { tenant?: string }) =>
      withContext(async ({ admin, db }) => {
        const env = { ...process.env };
        if (opts.tenant) {
          const { rows } = await admin.query("select sextant_private.tenant_role($1, 'viewer') as role", [opts.tenant]);
          // You hold the admin credentials anyway; this only sets the session up as the tenant sees it.
          env.PGOPTIONS = `-c role=${rows[0].role} -c default_transaction_read_only=on`;
        }
        const result = spawnSync("psql", [db.adminUrl, ...psqlArgs], { stdio: "inherit", env });
        if (result.error) throw new Error(`could not run psql (${(result.error as NodeJS.ErrnoException).code}); install the PostgreSQL client`);
        process.exitCode = result.status ?? 1;
      }),
    );
}
