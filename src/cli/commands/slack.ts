import type { Command } from "commander";
import { withContext } from "../context.ts";
import { printTable } from "../options.ts";

/** `sextant slack map|link|list`: which tenant a Slack workspace or channel asks, and as whom a Slack user asks. */
export default function register(program: Command): void {
  const slack = program.command("slack").description("connect a Slack workspace to tenants and Slack users to people (Ask in plain English)");
  slack
    .command("map <team_id> <tenant>")
    .description("questions from this Slack workspace (or one channel of it) are answered in this tenant")
    .option("--channel <channel_id>", "only this channel (default: the whole workspace)")
    .action((team: string, tenant: string, o: { channel?: string }) =>
      withContext(async ({ admin }) => {
        const { rows } = await admin.query("select * from sextant_private.map_slack_workspace($1, $2, $3)", [team, o.channel ?? "", tenant]);
        process.stdout.write(`Slack ${rows[0].team_id}${rows[0].channel_id ? `/${rows[0].channel_id}` : ""} → tenant ${rows[0].tenant_slug}\n`);
      }),
    );
  slack
    .command("link <team_id> <slack_user_id> <person>")
    .description("this Slack user asks as this person (an API-token principal's name or a signed-in person's e-mail)")
    .requiredOption("--tenant <slug>", "the person's tenant")
    .action((team: string, user: string, person: string, o: { tenant: string }) =>
      withContext(async ({ admin }) => {
        const { rows } = await admin.query("select * from sextant_private.link_slack_person($1, $2, $3, $4)", [team, user, o.tenant, person]);
        process.stdout.write(`Slack user ${rows[0].slack_user_id} asks as ${rows[0].person} in tenant ${rows[0].tenant_slug}\n`);
      }),
    );
  slack
    .command("list")
    .description("mapped workspaces and linked people")
    .action(() =>
      withContext(async ({ admin }) => {
        printTable((await admin.query("select team_id, channel_id, tenant_slug from sextant.slack_workspaces order by 1, 2")).rows);
        printTable((await admin.query("select team_id, slack_user_id, tenant_slug, person, linked_by from sextant.slack_people order by 1, 2")).rows);
      }),
    );
}
