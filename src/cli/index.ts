import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { randomBytes } from "node:crypto";
import { Command, InvalidArgumentError, Option } from "commander";
import { authenticatorUrl, migrateDatabase, workerUrl } from "../db/migrate.ts";
import { loadDemo } from "../demo/loadDemo.ts";
import { startShopApi } from "../demo/shopApi.ts";
import { describeError, exitWithError, withContext } from "./context.ts";
import { dbtLoad, type DbtLoadOptions } from "./dbtLoad.ts";
import { createEmbedder } from "../dbt/embeddings.ts";
import { runStdio } from "./mcpStdio.ts";
import { asTenant, createPipeline, runPipeline, runStatus } from "./pipeline.ts";
import { startWorker } from "../worker/index.ts";
import { rotateSigningKey } from "../oauth/keys.ts";
import { hashPassword, passwordProblem } from "../oauth/password.ts";
import { serve } from "./serve.ts";
import { addSource, listSources, refreshDueSources, refreshSource, removeSource } from "../sources/index.ts";

const LEVELS = ["viewer", "analyst", "admin"];

/** "30d", "12h", "90m" → an interval PostgreSQL understands. */
function parseDuration(value: string): string {
  const m = /^(\d{1,5})([dhm])$/.exec(value);
  if (!m) throw new InvalidArgumentError('use a number and a unit, e.g. "30d", "12h" or "90m"');
  return `${m[1]} ${{ d: "days", h: "hours", m: "minutes" }[m[2] as "d" | "h" | "m"]}`;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function printTable(rows: Record<string, unknown>[]): void {
  if (rows.length === 0) return void process.stdout.write("(none)\n");
  const cols = Object.keys(rows[0]!);
  const text = (v: unknown) => (v instanceof Date ? v.toISOString() : v === null ? "" : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => text(r[c]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  process.stdout.write([line(cols), ...rows.map((r) => line(cols.map((c) => text(r[c]))))].join("\n") + "\n");
}

const program = new Command()
  .name("sextant")
  .description(
    "Postgres-native data explorer: read-only SQL, schemas and dbt docs for AI agents (MCP), apps (GraphQL) and analysts (psql).\n" +
      "Uses DATABASE_URL when set, otherwise the embedded PostgreSQL under SEXTANT_DATA_DIR (default .sextant).",
  )
  .showHelpAfterError();

program
  .command("serve")
  .description("start the HTTP server (/graphql, /graphiql, /mcp, /health, /ready); loads the demo tenant on first run (embedded PostgreSQL; with DATABASE_URL only if SEXTANT_DEMO=1)")
  .action(() => serve().catch(exitWithError));

program
  .command("mcp")
  .description("serve MCP over stdio (for Claude Desktop and the MCP Inspector) as one tenant")
  .requiredOption("--tenant <slug>", "tenant to act as")
  .addOption(new Option("--role <level>", "access level").choices(LEVELS).default("viewer"))
  .action((opts: { tenant: string; role: string }) => runStdio(opts.tenant, opts.role).catch(exitWithError));

program
  .command("migrate")
  .description("apply migrations and re-apply the SQL API (idempotent)")
  .action(() =>
    withContext(async ({ db }) => {
      await migrateDatabase(db.adminUrl, { force: true });
      process.stdout.write("migrated\n");
    }),
  );

program
  .command("demo")
  .description("(re)load the demo tenant `demo` with generated shop data")
  .action(() =>
    withContext(async ({ admin }) => {
      await loadDemo(admin, { force: true });
      process.stdout.write("demo tenant loaded (schema shop)\n");
    }),
  );

program
  .command("demo-api")
  .description("serve the small shop API that the example pipeline reads (src/demo/pipeline), on 127.0.0.1, until stopped")
  .option("--port <n>", "port", "8080")
  .option("--token <t>", "require `Authorization: Bearer <t>` on every request")
  .action(async (opts: { port: string; token?: string }) => {
    try {
      const api = await startShopApi({ port: Number(opts.port), token: opts.token });
      process.stdout.write(`shop API on ${api.url}\n`);
      for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void api.close().then(() => process.exit(0)));
    } catch (error) {
      process.stderr.write(describeError(error));
      process.exit(1);
    }
  });

const tenant = program.command("tenant").description("manage tenants");
tenant
  .command("create <slug>")
  .description("create a tenant; maps existing schemas and creates those that do not exist")
  .option("--schema <name>", "a schema of the tenant (repeatable)", collect, [])
  .option("--name <display>", "display name")
  .action((slug: string, opts: { schema: string[]; name?: string }) =>
    withContext(async ({ admin }) => {
      const { rows } = await admin.query("select * from sextant_private.create_tenant($1, $2, $3)", [
        slug,
        opts.name ?? slug,
        opts.schema,
      ]);
      process.stdout.write(`tenant ${rows[0].slug} created (role ${rows[0].reader_role}; schemas: ${opts.schema.join(", ") || "none"})\n`);
    }),
  );
tenant
  .command("update <slug>")
  .description("change a tenant's limits and table filters (filters become privileges at once)")
  .option("--max-rows <n>", "largest page a query returns", Number)
  .option("--timeout-ms <n>", "statement timeout", Number)
  .option("--max-cost <n>", "planner cost budget per query", Number)
  .option("--rate-per-minute <n>", "calls per principal per minute", Number)
  .option("--rate-per-hour <n>", "calls per principal per hour", Number)
  .option("--rate-per-day <n>", "calls per tenant per day", Number)
  .option("--allow <pattern>", "only tables matching schema.table LIKE patterns (repeatable; replaces the list)", collect, [])
  .option("--exclude <pattern>", "hide tables matching schema.table LIKE patterns (repeatable; replaces the list)", collect, [])
  .option("--sensitive <regex>", "column-name patterns masked in samples (repeatable; replaces the list)", collect, [])
  .action((slug: string, o: Record<string, number | string[] | undefined>) =>
    withContext(async ({ admin }) => {
      const list = (v: unknown) => (Array.isArray(v) && v.length ? v : null);
      const { rowCount } = await admin.query(
        `update sextant.tenants set
           max_rows = coalesce($2, max_rows), statement_timeout_ms = coalesce($3, statement_timeout_ms),
           max_query_cost = coalesce($4, max_query_cost), rate_per_minute = coalesce($5, rate_per_minute),
           rate_per_hour = coalesce($6, rate_per_hour), tenant_rate_per_day = coalesce($7, tenant_rate_per_day),
           allowed_tables = coalesce($8, allowed_tables), excluded_tables = coalesce($9, excluded_tables),
           sensitive_column_patterns = coalesce($10, sensitive_column_patterns)
         where slug = $1`,
        [slug, o.maxRows ?? null, o.timeoutMs ?? null, o.maxCost ?? null, o.ratePerMinute ?? null, o.ratePerHour ?? null,
         o.ratePerDay ?? null, list(o.allow), list(o.exclude), list(o.sensitive)],
      );
      if (!rowCount) throw Object.assign(new Error(`tenant ${slug} does not exist`), { hint: "Run `sextant tenant list`." });
      const { rows } = await admin.query("select sextant_private.apply_table_filters($1) as hidden", [slug]);
      process.stdout.write(`tenant ${slug} updated (${rows[0].hidden} tables hidden by its filters)\n`);
    }),
  );
tenant
  .command("list")
  .description("list tenants with their schemas")
  .action(() =>
    withContext(async ({ admin }) => {
      const { rows } = await admin.query(
        `select t.slug, t.display_name, t.max_rows, t.statement_timeout_ms,
                coalesce(string_agg(s.schema_name, ', ' order by s.schema_name), '') as schemas
         from sextant.tenants t left join sextant.tenant_schemas s on s.tenant_slug = t.slug
         group by t.slug order by t.slug`,
      );
      printTable(rows);
    }),
  );

const token = program.command("token").description("manage API tokens");
token
  .command("create")
  .description("create an API token for a person or agent; prints only the token on stdout")
  .requiredOption("--tenant <slug>", "tenant")
  .requiredOption("--name <person>", "who the token is for")
  .addOption(new Option("--role <level>", "access level").choices(LEVELS).default("viewer"))
  .option("--expires <duration>", 'lifetime, e.g. "30d", "12h"; default: never', parseDuration)
  .action((opts: { tenant: string; name: string; role: string; expires?: string }) =>
    withContext(async ({ admin }) => {
      const { rows } = await admin.query(
        "select sextant_private.create_api_token($1, $2, $3, now() + $4::interval) as token",
        [opts.tenant, opts.name, opts.role, opts.expires ?? null],
      );
      process.stdout.write(`${rows[0].token}\n`);
    }),
  );
token
  .command("list")
  .description("list API tokens (prefixes only, never the tokens)")
  .option("--tenant <slug>", "only this tenant")
  .action((opts: { tenant?: string }) =>
    withContext(async ({ admin }) => {
      const { rows } = await admin.query(
        `select id, tenant_slug as tenant, principal_name as name, prefix, access_level as role, status,
                created_at, expires_at, last_used_at
         from sextant_private.api_token_list where $1::text is null or tenant_slug = $1 order by created_at`,
        [opts.tenant ?? null],
      );
      printTable(rows);
    }),
  );
token
  .command("revoke <id-or-prefix>")
  .description("revoke a token at once")
  .action((id: string) =>
    withContext(async ({ admin }) => {
      const { rows } = await admin.query("select * from sextant_private.revoke_api_token($1)", [id]);
      process.stdout.write(`revoked token ${rows[0].prefix} of ${rows[0].principal_name} (${rows[0].tenant_slug})\n`);
    }),
  );

program
  .command("dbt")
  .description("dbt knowledge base")
  .command("load [target-dir]")
  .description(
    "load manifest.json (+ catalog.json, run_results.json; plain or .gz) for a tenant from a directory or dbt Cloud, " +
      "replacing its previous version atomically",
  )
  .requiredOption("--tenant <slug>", "tenant")
  .option("--project <name>", "project name (default: the manifest's, or its main package)")
  .option("--cloud-account <id>", "dbt Cloud account id (token in DBT_CLOUD_TOKEN)")
  .option("--cloud-run <id>", "dbt Cloud run id")
  .option("--cloud-job <id>", "dbt Cloud job id (its latest run's artifacts)")
  .option("--cloud-url <url>", "dbt Cloud base URL", "https://cloud.getdbt.com")
  .action((targetDir: string | undefined, opts: DbtLoadOptions) => withContext(({ admin, config }) => dbtLoad(admin, targetDir, { ...opts, embedder: createEmbedder(config.embeddings), limits: config.upload })));

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

program
  .command("worker")
  .description("run the pipeline worker alone (sextant serve runs one too unless SEXTANT_WORKER=0)")
  .action(() =>
    withContext(async ({ admin, config, db, log }) => {
      // Its own login (sextant_worker), never the admin's: see src/worker/index.ts. The admin
      // connection the CLI opened (to migrate) is not kept for the worker's lifetime.
      const databaseUrl = await workerUrl(db.adminUrl);
      await admin.end();
      const worker = await startWorker({ databaseUrl, log, concurrency: config.workerConcurrency, staleMs: config.workerStaleMs,
        allowHosts: config.sourceAllowHosts, fileDir: config.sourceFileDir });
      process.stderr.write("sextant worker running; Ctrl-C stops it after the current batch\n");
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);
      await new Promise<void>((resolve) => {
        for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => resolve());
      });
      await worker.stop();
    }),
  );

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
user
  .command("list")
  .description("people and their tenants")
  .option("--tenant <slug>", "only this tenant's")
  .action((opts: { tenant?: string }) =>
    withContext(async ({ admin }) => {
      const { rows } = await admin.query(
        `select u.email, ut.tenant_slug as tenant, ut.access_level as role, u.disabled_at is not null as disabled, u.created_at
           from sextant_private.users u join sextant_private.user_tenants ut on ut.user_id = u.id
          where $1::text is null or ut.tenant_slug = $1 order by u.email, ut.tenant_slug`, [opts.tenant ?? null]);
      printTable(rows);
    }),
  );
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

const oauth = program.command("oauth").description("OAuth grants (connected apps) and signing keys");
oauth
  .command("grants")
  .description("OAuth grants: who allowed which app, for which tenant")
  .option("--tenant <slug>", "only this tenant's")
  .action((opts: { tenant?: string }) =>
    withContext(async ({ admin }) => {
      const { rows } = await admin.query(
        `select id, tenant_slug as tenant, principal, coalesce(client_name, client_id) as app, access_level as role, created_at, last_used_at,
                case when revoked_at is null then 'active' else 'revoked' end as status
           from sextant.oauth_grants where $1::text is null or tenant_slug = $1 order by created_at desc`, [opts.tenant ?? null]);
      printTable(rows);
    }),
  );
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
  .command("remove <name>")
  .description("drop a source: its tables, schemas, foreign server and user mapping")
  .requiredOption("--tenant <slug>", "tenant")
  .action((name: string, opts: { tenant: string }) =>
    withContext(async ({ admin }) => {
      await removeSource(admin, opts.tenant, name);
      process.stdout.write(`source ${name} removed\n`);
    }),
  );

program
  .command("db-url")
  .description("print the connection string the server uses (the authenticator), or the admin one")
  .option("--admin", "the admin (migration) connection string")
  .action((opts: { admin?: boolean }) =>
    withContext(async ({ db }) => {
      process.stdout.write(`${opts.admin ? db.adminUrl : await authenticatorUrl(db.adminUrl)}\n`);
    }),
  );

program
  .command("psql")
  .description("open psql on the database, as admin or (with --tenant) as the tenant's read-only role")
  .option("--tenant <slug>", "act as this tenant's reader role, read-only")
  .argument("[psql-args...]", "passed to psql as they are (e.g. -c 'select 1'; put -- before them if one is --tenant)")
  // Options of psql's own (-c, -f, -A, ...) are not ours: hand them over instead of refusing them.
  .allowUnknownOption()
  .action((psqlArgs: string[], opts: { tenant?: string }) =>
    withContext(async ({ admin, db }) => {
      const env = { ...process.env };
      if (opts.tenant) {
        const { rows } = await admin.query("select sextant_private.tenant_role($1, 'viewer') as role", [opts.tenant]);
        // You hold the admin credentials anyway; this only sets the session up as the tenant sees it.
        env.PGOPTIONS = `-c role=${rows[0].role} -c default_transaction_read_only=on`;
      }
      const result = spawnSync("psql", [db.adminUrl, ...psqlArgs], { stdio: "inherit", env });
      if (result.error) throw new Error(`could not run psql (${(result.error as NodeJS.ErrnoException).code}); install the PostgreSQL client`);
      process.exitCode = result.status ?? 1;
    }),
  );

await program.parseAsync(process.argv);
