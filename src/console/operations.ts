import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { OperationGate } from "../audit/operation.ts";
import type { Principal } from "../auth/principal.ts";
import { SextantError, toPublicError, type PublicError } from "../db/errors.ts";
import { queryAsRole } from "../db/queryAsRole.ts";
import YAML from "yaml";

/**
 * The console's calls that are not MCP tools: SQL functions of schema `sextant` that GraphQL
 * and psql call too (sql/console.sql, sql/oauth.sql). Who may do what is decided there, as the
 * person's own role; this table only names the function and its arguments.
 */
interface ConsoleOperation {
  sql: string;
  args: (input: Record<string, unknown>) => unknown[];
  writes?: boolean;
  result: "one" | "rows";
}

const text = (v: unknown, max = 1000): string | null => {
  if (v === undefined || v === null || v === "") return null;
  if (typeof v !== "string" || v.length > max || v.includes("\u0000")) throw new SextantError("SX400", `a text argument must be a string of at most ${max} characters`);
  return v;
};
const int = (v: unknown): number | null => {
  if (v === undefined || v === null || v === "") return null;
  if (typeof v !== "number" || !Number.isInteger(v)) throw new SextantError("SX400", "a number argument must be an integer");
  return v;
};

/**
 * A pipeline typed into the console, as YAML (or JSON), for sextant.create_pipeline. Unlike a
 * file given to the CLI, nothing is taken from the server's environment (no ${VAR}, no
 * `secrets:`): those are the operator's, not a tenant's. Models are listed inline.
 */
function pipelineJson(yaml: unknown): string {
  const source = text(yaml, 200_000);
  if (!source) throw new SextantError("SX400", "the pipeline definition is empty");
  let doc: unknown;
  try {
    doc = YAML.parse(source, { maxAliasCount: 50 });
  } catch (error) {
    throw new SextantError("SX400", `the pipeline is not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new SextantError("SX400", "a pipeline is a mapping with name, target_schema, source and entities");
  if ("secrets" in doc) throw new SextantError("SX400", "secrets cannot be set from the console", "Set them with `sextant pipeline secret` or sextant.set_pipeline_secret.");
  return JSON.stringify({ models: [], ...doc });
}

export const CONSOLE_OPERATIONS: Record<string, ConsoleOperation> = {
  create_api_token: {
    sql: "select sextant.create_api_token($1, $2, $3) as token",
    args: (i) => [text(i.name, 200), text(i.access_level) ?? "viewer", int(i.expires_in_days)],
    writes: true,
    result: "one",
  },
  list_api_tokens: { sql: "select * from sextant.list_api_tokens()", args: () => [], result: "rows" },
  // Slack users linked to people of the tenant (issue 19: linked once, here). RLS on
  // sextant.slack_people decides: admins only, only in a workspace mapped to their own tenant.
  list_slack_people: {
    sql: "select team_id, slack_user_id, person, linked_by, created_at from sextant.slack_people order by created_at desc limit 500",
    args: () => [], result: "rows",
  },
  link_slack_person: {
    sql: "insert into sextant.slack_people (team_id, slack_user_id, person) values ($1, $2, $3) returning team_id, slack_user_id, person",
    args: (i) => [text(i.team_id, 32), text(i.slack_user_id, 32), text(i.person, 320)],
    writes: true, result: "one",
  },
  unlink_slack_person: {
    sql: "delete from sextant.slack_people where team_id = $1 and slack_user_id = $2 returning team_id, slack_user_id",
    args: (i) => [text(i.team_id, 32), text(i.slack_user_id, 32)],
    writes: true, result: "one",
  },
  revoke_api_token: { sql: "select * from sextant.revoke_api_token($1)", args: (i) => [text(i.prefix, 16)], writes: true, result: "one" },
  my_query_history: { sql: "select * from sextant.my_query_history($1, $2)", args: (i) => [int(i.max_results) ?? 50, text(i.tool, 100)], result: "rows" },
  // The tenant's audit log (admins; RLS shows everyone else their own events only).
  audit_log: {
    sql: `select at, principal, auth_method, tool, outcome, error_code, row_count, duration_ms, left(sql, 2000) as sql
          from sextant.audit_events
          where ($1::text is null or tool = $1) and ($2::text is null or outcome = $2) and ($3::text is null or principal = $3)
          order by at desc limit least(greatest(coalesce($4::integer, 100), 1), 500)`,
    args: (i) => [text(i.tool, 100), text(i.outcome, 20), text(i.principal, 320), int(i.max_results)],
    result: "rows",
  },
  create_pipeline: { sql: "select (sextant.create_pipeline($1::jsonb)).name as name", args: (i) => [pipelineJson(i.yaml)], writes: true, result: "one" },
  // Team knowledge: the table's note (analysts and admins write; RLS and the table's checks
  // decide, as for GraphQL's knowledge_notes mutations) and reviewing learnings (admins).
  save_table_note: {
    sql: `insert into sextant.knowledge_notes as kn (table_ref, description) values (sextant_exec.table_ref($1), $2)
          on conflict (tenant_slug, table_ref) do update set description = excluded.description, updated_at = now(),
             updated_by = sextant.current_person()
          returning kn.table_ref, kn.description`,
    args: (i) => [text(i.table, 200), text(i.description, 20_000)],
    writes: true,
    result: "one",
  },
  review_learning: { sql: "select id, status from sextant.review_learning($1, $2)", args: (i) => [int(i.learning_id), text(i.status, 20)], writes: true, result: "one" },
  list_oauth_grants: { sql: "select * from sextant.list_oauth_grants()", args: () => [], result: "rows" },
  // The Admin page's read-only views (sql/console.sql): SQL decides who may (admins; schemas: anyone in the tenant).
  list_people: { sql: "select * from sextant.list_people()", args: () => [], result: "rows" },
  rate_limit_use: { sql: "select * from sextant.rate_limit_use()", args: () => [], result: "rows" },
  list_provisioned_schemas: { sql: "select * from sextant.list_provisioned_schemas()", args: () => [], result: "rows" },
  revoke_oauth_grant: { sql: "select * from sextant.revoke_oauth_grant($1)", args: (i) => [int(i.grant_id)], writes: true, result: "one" },
};

export type OperationResult = { ok: true; data: unknown } | { ok: false; error: PublicError };

/** One console operation through the one audit and rate-limit step (src/audit/operation.ts), as the person's role. */
export async function runOperation(
  deps: { pool: pg.Pool; gate: OperationGate; logError: (id: string, e: unknown) => void },
  principal: Principal, name: string, input: Record<string, unknown>,
): Promise<OperationResult> {
  const op = CONSOLE_OPERATIONS[name]!;
  const started = performance.now();
  const requestId = randomUUID();
  let failure: PublicError | undefined;
  let rowCount: number | undefined;
  try {
    const args = op.args(input);
    await deps.gate.admit(principal);
    const rows = await queryAsRole(deps.pool, principal, op.sql, args, { write: op.writes ?? false });
    rowCount = rows.length;
    return { ok: true, data: op.result === "one" ? (rows[0] ?? null) : rows };
  } catch (error) {
    failure = toPublicError(error, deps.logError);
    return { ok: false, error: failure };
  } finally {
    // The token text is never audited: only the operation's name.
    deps.gate.record(principal, { tool: `console:${name}`, requestId }, { started, rowCount, failure });
  }
}
