import { InvalidArgumentError, type Command } from "commander";
import { addSource, allowSourceHost, disallowSourceHost, listSourceHosts, listSources, refreshDueSources, refreshSource, removeSource } from "../../sources/index.ts";
import { withContext } from "../context.ts";
import { collect, printTable } from "../options.ts";

/** `sextant source add|list|refresh|refresh-due|remove|allow|disallow|hosts`: other PostgreSQL databases over postgres_fdw. */
export default function register(program: Command): void {
  const source = program.command("source").description("a tenant's tables in other PostgreSQL databases (postgres_fdw)");
  source
    .command("add")
    .description("import remote schemas into <name>_<schema> for a tenant, read-only")
    .requiredOption("--tenant <slug>", "tenant")
    .requiredOption("--name <name>", "the source's name (its tables go into <name>_<schema>)")
    .option("--url <url>", "postgres://user:password@host:port/dbname[?sslmode=…]; default: SEXTANT_SOURCE_URL (keeps the password out of the process list)")
    .option("--schema <name>", "a remote schema to import (repeatable)", collect, [])
    .action((opts: { tenant: string; name: string; url?: string; schema: string[] }) =>
      withContext(async ({ admin, config }) => {
        const url = opts.url ?? process.env.SEXTANT_SOURCE_URL;
        if (!url) throw new InvalidArgumentError("give --url or set SEXTANT_SOURCE_URL");
        const row = await addSource(admin, config.sourceAllowHosts, { tenant: opts.tenant, name: opts.name, url, schemas: opts.schema });
        process.stdout.write(`source ${row.name} added: ${row.table_count} tables in ${row.schemas.map((s) => `${row.name}_${s}`).join(", ")} (PostgreSQL ${row.server_version})\n`);
      }),
    );
  source
    .command("list")
    .description("sources, their status and last refresh (never a password)")
    .option("--tenant <slug>", "only this tenant's")
    .action((opts: { tenant?: string }) =>
      withContext(async ({ admin }) => printTable((await listSources(admin, opts.tenant)) as unknown as Record<string, unknown>[])),
    );
  source
    .command("refresh <name>")
    .description("re-import a source now: new, changed and dropped remote tables follow")
    .requiredOption("--tenant <slug>", "tenant")
    .action((name: string, opts: { tenant: string }) =>
      withContext(async ({ admin }) => {
        const row = await refreshSource(admin, opts.tenant, name);
        if (row.status !== "ok") throw new Error(`source ${name} could not be refreshed: ${row.last_error}`);
        process.stdout.write(`source ${name} refreshed: ${row.table_count} tables\n`);
      }),
    );
  source
    .command("refresh-due")
    .description("refresh every source not refreshed for a while (run it from cron; failures are recorded per source)")
    .option("--older-than <interval>", "a PostgreSQL interval", "1 hour")
    .action((opts: { olderThan: string }) =>
      withContext(async ({ admin }) => {
        const { refreshed, failed } = await refreshDueSources(admin, opts.olderThan);
        process.stdout.write(`${refreshed} sources refreshed, ${failed} failed\n`);
        if (failed > 0) process.exitCode = 1;
      }),
    );
  source
    .command("allow <host>")
    .description("let a tenant's admins add sources on host[:port] (GraphQL addSource, psql sextant.add_source); checked like source add, connected at the address checked now")
    .requiredOption("--tenant <slug>", "tenant")
    .action((host: string, opts: { tenant: string }) =>
      withContext(async ({ admin, config }) => {
        const row = await allowSourceHost(admin, config.sourceAllowHosts, opts.tenant, host);
        process.stdout.write(`tenant ${row.tenant} may add sources on ${row.host}:${row.port} (address ${row.address})\n`);
      }),
    );
  source
    .command("disallow <host>")
    .description("take host[:port] off a tenant's allow list (its sources stay until removed)")
    .requiredOption("--tenant <slug>", "tenant")
    .action((host: string, opts: { tenant: string }) =>
      withContext(async ({ admin }) => {
        const removed = await disallowSourceHost(admin, opts.tenant, host);
        process.stdout.write(removed ? `${host} is no longer allowed for ${opts.tenant}\n` : `${host} was not allowed for ${opts.tenant}\n`);
      }),
    );
  source
    .command("hosts")
    .description("the hosts tenant admins may add sources on")
    .option("--tenant <slug>", "only this tenant's")
    .action((opts: { tenant?: string }) =>
      withContext(async ({ admin }) => printTable((await listSourceHosts(admin, opts.tenant)) as unknown as Record<string, unknown>[])),
    );
  source
    .command("remove <name>")
    .description("drop a source: its tables, schemas, foreign server and user mapping")
    .requiredOption("--tenant <slug>", "tenant")
    .action((name: string, opts: { tenant: string }) =>
      withContext(async ({ admin }) => {
        await removeSource(admin, opts.tenant, name);
        process.stdout.write(`source ${name} removed\n`);
      }),
    );
}
