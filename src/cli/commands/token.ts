import { InvalidArgumentError, Option, type Command } from "commander";
import { parseToolGroups } from "../../mcp/toolGroups.ts";
import { TOOL_GROUPS } from "../../mcp/toolSpec.ts";
import { withContext } from "../context.ts";
import { addListCommand, LEVELS, parseDuration } from "../options.ts";

/** `--groups catalog,query`: known MCP tool groups only (the list /mcp's header takes). */
function parseGroups(value: string): string[] {
  try {
    return [...parseToolGroups(value)];
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}; known groups: ${TOOL_GROUPS.join(", ")}`);
  }
}

/** `sextant token create|list|revoke`: API tokens (stored hashed; printed once). */
export default function register(program: Command): void {
  const token = program.command("token").description("manage API tokens");
  token
    .command("create")
    .description("create an API token for a person or agent; prints only the token on stdout")
    .requiredOption("--tenant <slug>", "tenant")
    .requiredOption("--name <person>", "who the token is for")
    .addOption(new Option("--role <level>", "access level").choices(LEVELS).default("viewer"))
    .option("--expires <duration>", 'lifetime, e.g. "30d", "12h"; default: never', parseDuration)
    .option("--groups <list>", `MCP tool groups the token is for (${TOOL_GROUPS.join(", ")}); default: all`, parseGroups)
    .action((opts: { tenant: string; name: string; role: string; expires?: string; groups?: string[] }) =>
      withContext(async ({ admin }) => {
        const { rows } = await admin.query(
          "select sextant_private.create_api_token($1, $2, $3, now() + $4::interval, $5::text[]) as token",
          [opts.tenant, opts.name, opts.role, opts.expires ?? null, opts.groups ?? null],
        );
        process.stdout.write(`${rows[0].token}\n`);
      }),
    );
  addListCommand(token, "list", "list API tokens (prefixes only, never the tokens)",
    `select id, tenant_slug as tenant, principal_name as name, prefix, access_level as role, status,
            coalesce(array_to_string(tool_groups, ','), 'all') as tool_groups, created_at, expires_at, last_used_at
     from sextant_private.api_token_list where $1::text is null or tenant_slug = $1 order by created_at`,
    "only this tenant");
  token
    .command("revoke <id-or-prefix>")
    .description("revoke a token at once")
    .action((id: string) =>
      withContext(async ({ admin }) => {
        const { rows } = await admin.query("select * from sextant_private.revoke_api_token($1)", [id]);
        process.stdout.write(`revoked token ${rows[0].prefix} of ${rows[0].principal_name} (${rows[0].tenant_slug})\n`);
      }),
    );
}
