import type { Command } from "commander";
import { rotateSigningKey } from "../../oauth/keys.ts";
import { withContext } from "../context.ts";
import { addListCommand } from "../options.ts";

/** `sextant oauth grants|revoke|rotate-key`. */
export default function register(program: Command): void {
  const oauth = program.command("oauth").description("OAuth grants (connected apps) and signing keys");
  addListCommand(oauth, "grants", "OAuth grants: who allowed which app, for which tenant",
    `select id, tenant_slug as tenant, principal, coalesce(client_name, client_id) as app, access_level as role, created_at, last_used_at,
            case when revoked_at is null then 'active' else 'revoked' end as status
       from sextant.oauth_grants where $1::text is null or tenant_slug = $1 order by created_at desc`);
  oauth
    .command("revoke <grant-id>")
    .description("revoke a grant: its refresh tokens stop working and its access tokens are refused at once")
    .action((id: string) =>
      withContext(async ({ admin }) => {
        const { rowCount } = await admin.query(
          "update sextant.oauth_grants set revoked_at = now(), revoked_reason = 'revoked by an operator' where id = $1 and revoked_at is null", [Number(id)]);
        if (!rowCount) throw new Error(`no active grant ${id}`);
        process.stdout.write(`grant ${id} revoked\n`);
      }),
    );
  oauth
    .command("rotate-key")
    .description("sign new access tokens with a new key (the old one verifies for another day)")
    .action(() =>
      withContext(async ({ admin }) => {
        process.stdout.write(`new signing key ${await rotateSigningKey(admin)}\n`);
      }),
    );
}
