import readline from "node:readline/promises";
import type { Command } from "commander";
import { planUninstall, uninstall } from "../../db/uninstall.ts";
import { withContext } from "../context.ts";

/** `sextant uninstall [--yes]`: removes what Sextant created in the database, after a confirmation. */
export default function register(program: Command): void {
  program
    .command("uninstall")
    .description("remove every schema, role, server and setting Sextant created in this database; your own tables stay")
    .option("--yes", "do not ask for confirmation")
    .action((opts: { yes?: boolean }) =>
      withContext(async ({ admin }) => {
        const plan = await planUninstall(admin);
        if (!plan) throw Object.assign(new Error("Sextant is not installed in this database"), { hint: "Check DATABASE_URL." });
        const list = (label: string, items: string[]) => `  ${label}: ${items.length ? items.join(", ") : "none"}\n`;
        process.stderr.write(
          `This removes Sextant from database ${plan.database}:\n` +
            list("schemas dropped with everything in them", plan.schemas) +
            list("foreign servers dropped", plan.servers) +
            list("roles dropped (cluster-wide)", plan.roles) +
            list("extensions dropped", plan.extensions) +
            list("your schemas kept, Sextant's grants on them removed", plan.mappedSchemas),
        );
        if (!opts.yes) {
          const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
          const answer = await rl.question('Type "uninstall" to go on: ').catch(() => "");
          rl.close();
          if (answer.trim() !== "uninstall") throw new Error("nothing was removed (not confirmed)");
        }
        const { keptRoles } = await uninstall(admin, plan);
        for (const k of keptRoles) process.stderr.write(`kept role ${k.role}: ${k.reason}\n`);
        process.stdout.write(`Sextant removed from database ${plan.database}\n`);
      }, { migrate: false }),
    );
}
