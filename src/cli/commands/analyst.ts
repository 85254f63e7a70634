import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { withContext } from "../context.ts";

/** `sextant analyst create`: a read-only psql login in one tenant. */
export default function register(program: Command): void {
  program
    .command("analyst")
    .description("manage psql logins for analysts")
    .command("create <login>")
    .description("create a read-only psql LOGIN role in a tenant; prints its connection string")
    .requiredOption("--tenant <slug>", "tenant")
    .action((login: string, opts: { tenant: string }) =>
      withContext(async ({ admin, db }) => {
        const password = randomBytes(18).toString("base64url");
        await admin.query("select sextant_private.create_analyst_login($1, $2, $3)", [opts.tenant, login, password]);
        const url = new URL(db.adminUrl);
        url.username = login;
        url.password = password;
        process.stdout.write(`${url.toString()}\n`);
      }),
    );
}
