import type { Command } from "commander";
import { installDatabase } from "../../install.ts";
import { withContext } from "../context.ts";

/** `sextant migrate`: migrations plus the SQL API, forced. */
export default function register(program: Command): void {
  program
    .command("migrate")
    .description("apply migrations and re-apply the SQL API (idempotent)")
    .action(() =>
      withContext(async ({ db, log }) => {
        await installDatabase(db.adminUrl, { force: true, warn: (message) => log.warn(message) });
        process.stdout.write("migrated\n");
      }, { migrate: false }), // installed just above, forced: once, not twice
    );
}
