import type { Command } from "commander";
import { withContext } from "../context.ts";
import { asTenant } from "../pipeline.ts";

/** `sextant schema provision|teardown`: a tenant's provisioned schemas (t_<tenant>__<name>). */
export default function register(program: Command): void {
  const schema = program.command("schema").description("provisioned schemas (t_<tenant>__<name>)");
  schema
    .command("provision <name>")
    .description("create a schema for a tenant, readable by that tenant only")
    .requiredOption("--tenant <slug>", "tenant")
    .option("--ttl-hours <n>", "drop it automatically after this many hours", Number)
    .action((name: string, opts: { tenant: string; ttlHours?: number }) =>
      withContext(async ({ admin }) => {
        const row = await asTenant(admin, opts.tenant, "admin", async () =>
          (await admin.query("select schema_name, expires_at from sextant.provision_schema($1, $2)", [name, opts.ttlHours ?? null])).rows[0]);
        process.stdout.write(`schema ${row.schema_name} provisioned${row.expires_at ? ` (expires ${row.expires_at.toISOString()})` : ""}\n`);
      }),
    );
  schema
    .command("teardown <name>")
    .description("drop a provisioned schema and everything in it")
    .requiredOption("--tenant <slug>", "tenant")
    .action((name: string, opts: { tenant: string }) =>
      withContext(async ({ admin }) => {
        const row = await asTenant(admin, opts.tenant, "admin", async () => (await admin.query("select sextant.teardown_schema($1) as s", [name])).rows[0]);
        process.stdout.write(`schema ${row.s} dropped\n`);
      }),
    );
}
