import { InvalidArgumentError, type Command } from "commander";
import { withContext } from "../context.ts";
import { collect, printTable } from "../options.ts";
import { asTenant, createPipeline, runPipeline, runStatus } from "../pipeline.ts";

/** `sextant pipeline create|list|run|delete|status|cancel`. */
export default function register(program: Command): void {
  const pipeline = program.command("pipeline").description("define and run pipelines (source API → tenant schema → SQL models)");
  pipeline
    .command("create <file>")
    .description("create or replace a pipeline from a YAML/JSON file (models: a folder of dbt-style .sql files)")
    .requiredOption("--tenant <slug>", "the tenant that owns it")
    .option("--secret <name=value>", "a secret the source refers to as {secret: name} (repeatable; or `secrets:` in the file)", collect, [])
    .action((file: string, opts: { tenant: string; secret: string[] }) =>
      withContext(async ({ admin }) => {
        const secrets: Record<string, string> = {};
        for (const s of opts.secret) {
          const at = s.indexOf("=");
          if (at < 1) throw new InvalidArgumentError(`--secret ${s}: use name=value`);
          secrets[s.slice(0, at)] = s.slice(at + 1);
        }
        process.stdout.write((await createPipeline(admin, opts.tenant, file, secrets)) + "\n");
      }),
    );
  pipeline
    .command("list")
    .description("a tenant's pipelines and their last runs")
    .requiredOption("--tenant <slug>", "tenant")
    .action((opts: { tenant: string }) =>
      withContext(async ({ admin }) => {
        const rows = await asTenant(admin, opts.tenant, "viewer", async () =>
          (await admin.query("select name, source_kind as source, target_schema, schedule, last_run_id as last_run, last_status, last_finished_at from sextant.list_pipelines()")).rows);
        printTable(rows);
      }),
    );
  pipeline
    .command("run <name>")
    .description("queue a full refresh; --wait follows it with a progress bar (Ctrl-C cancels the run)")
    .requiredOption("--tenant <slug>", "tenant")
    .option("--entity <name>", "only this entity (repeatable)", collect, [])
    .option("--wait", "wait for the run to end; exit 1 unless it succeeds")
    .action((name: string, opts: { tenant: string; entity: string[]; wait?: boolean }) =>
      withContext(async ({ admin }) => runPipeline(admin, opts.tenant, name, opts)),
    );
  pipeline
    .command("delete <name>")
    .description("delete a pipeline and its run history (its tables stay)")
    .requiredOption("--tenant <slug>", "tenant")
    .action((name: string, opts: { tenant: string }) =>
      withContext(async ({ admin }) => {
        await asTenant(admin, opts.tenant, "admin", () => admin.query("select sextant.delete_pipeline($1)", [name]));
        process.stdout.write(`pipeline ${name} deleted\n`);
      }),
    );
  pipeline
    .command("status <run-id>")
    .description("status of a run")
    .requiredOption("--tenant <slug>", "tenant")
    .action((id: string, opts: { tenant: string }) =>
      withContext(async ({ admin }) => {
        const s = await runStatus(admin, opts.tenant, Number(id));
        process.stdout.write(JSON.stringify(s, null, 2) + "\n");
      }),
    );
  pipeline
    .command("cancel <run-id>")
    .description("cancel a run (a queued one never starts; a running one stops at its next batch)")
    .requiredOption("--tenant <slug>", "tenant")
    .action((id: string, opts: { tenant: string }) =>
      withContext(async ({ admin }) => {
        const row = await asTenant(admin, opts.tenant, "admin", async () =>
          (await admin.query("select id, status, cancel_requested from sextant.cancel_materialization($1)", [Number(id)])).rows[0]);
        process.stdout.write(`run ${row.id}: ${row.status}${row.status === "running" ? " (stopping at the next batch)" : ""}\n`);
      }),
    );
}
