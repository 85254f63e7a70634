import type { Command } from "commander";
import { withContext } from "../context.ts";
import { collect, printTable } from "../options.ts";

/** `sextant tenant create|update|list`. */
export default function register(program: Command): void {
  const tenant = program.command("tenant").description("manage tenants");
  tenant
    .command("create <slug>")
    .description("create a tenant; maps existing schemas and creates those that do not exist")
    .option("--schema <name>", "a schema of the tenant (repeatable)", collect, [])
    .option("--name <display>", "display name")
    .option("--table-owner <role>", "a role that creates tables in those schemas later, e.g. dbt's (repeatable; their schemas' owners are followed anyway)", collect, [])
    .action((slug: string, opts: { schema: string[]; name?: string; tableOwner: string[] }) =>
      withContext(async ({ admin }) => {
        const { rows } = await admin.query("select * from sextant_private.create_tenant($1, $2, $3, $4)", [
          slug,
          opts.name ?? slug,
          opts.schema,
          opts.tableOwner,
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
        // A pattern PostgreSQL cannot compile would make every sample and describe of the tenant fail.
        for (const pattern of (list(o.sensitive) ?? []) as string[]) {
          await admin.query("select '' ~* $1", [pattern]).catch((e: Error) => {
            throw Object.assign(new Error(`--sensitive ${JSON.stringify(pattern)} is not a valid regular expression: ${e.message}`), {
              hint: "Patterns are PostgreSQL regular expressions, matched case-insensitively against column names.",
            });
          });
        }
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
        ).catch((e: { code?: string; constraint?: string }) => {
          // Migration 000121 holds every write to patterns that compile alone; rows stored before
          // it are not checked until they change, and then any update of the tenant fails here.
          if (e.code === "23514" && e.constraint === "tenants_sensitive_column_patterns_compile") {
            throw Object.assign(new Error(`tenant ${slug}'s stored sensitive-column patterns include one PostgreSQL cannot compile`), {
              hint: `Replace the list: \`sextant tenant update ${slug} --sensitive <regex>\` (repeatable).`,
            });
          }
          throw e;
        });
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
}
