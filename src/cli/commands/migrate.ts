import type { Command } from "commander";
import { migrateDatabase } from "../../db/migrate.ts";
import { withContext } from "../context.ts";

/** `sextant migrate`: migrations plus the SQL API, forced. */
export default function register(program: Command): void {
  program
    .command("migrate")
    .description("apply migrations and re-apply the SQL API (idempotent)")
    .action(() =>
      withContext(async ({ db }) => {
        await migrateDatabase(db.adminUrl, { force: true });
        process.stdout.write("migrated\n");
      }),
    );
}
