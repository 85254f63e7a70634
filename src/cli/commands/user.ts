import fs from "node:fs";
import { randomBytes } from "node:crypto";
import { InvalidArgumentError, Option, type Command } from "commander";
import { hashPassword, passwordProblem } from "../../oauth/password.ts";
import { withContext } from "../context.ts";
import { addListCommand, LEVELS } from "../options.ts";

/** `sextant user create|list|disable`: people who sign in on the OAuth login page. */
export default function register(program: Command): void {
  const user = program.command("user").description("people who sign in with OAuth (the login page)");
  user
    .command("create")
    .description("create a person, or add an existing one to a tenant; prints a generated password unless --password-stdin")
    .requiredOption("--tenant <slug>", "tenant to add them to")
    .requiredOption("--email <email>", "their e-mail (the login name)")
    .addOption(new Option("--role <level>", "their level in the tenant").choices(LEVELS).default("viewer"))
    .option("--name <display>", "display name")
    .option("--password-stdin", "read the password from standard input (at least 12 characters)")
    .action((opts: { tenant: string; email: string; role: string; name?: string; passwordStdin?: boolean }) =>
      withContext(async ({ admin }) => {
        let password: string | undefined;
        if (opts.passwordStdin) {
          password = fs.readFileSync(0, "utf8").replace(/\r?\n$/, "");
          const problem = passwordProblem(password);
          if (problem) throw new InvalidArgumentError(problem);
        }
        const exists = (await admin.query("select 1 from sextant_private.users where email = lower($1)", [opts.email])).rowCount;
        if (!password && !exists) password = randomBytes(15).toString("base64url");
        const { rows } = await admin.query("select * from sextant_private.upsert_user($1, $2, $3, $4, $5)", [
          opts.email, password ? await hashPassword(password) : null, opts.name ?? null, opts.tenant, opts.role,
        ]);
        process.stdout.write(`${rows[0].created ? "created" : "updated"} ${opts.email.toLowerCase()} (${opts.role} in ${opts.tenant})\n`);
        if (password && !opts.passwordStdin) process.stdout.write(`password: ${password}\n`);
      }),
    );
  addListCommand(user, "list", "people and their tenants",
    `select u.email, ut.tenant_slug as tenant, ut.access_level as role, u.disabled_at is not null as disabled, u.created_at
       from sextant_private.users u join sextant_private.user_tenants ut on ut.user_id = u.id
      where $1::text is null or ut.tenant_slug = $1 order by u.email, ut.tenant_slug`);
  user
    .command("disable <email>")
    .description("stop a person from signing in; their tokens stop working at once")
    .action((email: string) =>
      withContext(async ({ admin }) => {
        const { rowCount } = await admin.query("update sextant_private.users set disabled_at = now() where email = lower($1) and disabled_at is null", [email]);
        if (!rowCount) throw new Error(`no active person with e-mail ${email}`);
        process.stdout.write(`${email.toLowerCase()} disabled\n`);
      }),
    );
}
