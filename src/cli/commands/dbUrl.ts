import type { Command } from "commander";
import { authenticatorUrl } from "../../db/migrate.ts";
import { withContext } from "../context.ts";

/** `sextant db-url [--admin]`. */
export default function register(program: Command): void {
  program
    .command("db-url")
    .description("print the connection string the server uses (the authenticator), or the admin one")
    .option("--admin", "the admin (migration) connection string")
    .action((opts: { admin?: boolean }) =>
      withContext(async ({ db }) => {
        process.stdout.write(`${opts.admin ? db.adminUrl : await authenticatorUrl(db.adminUrl)}\n`);
      }),
    );
}
