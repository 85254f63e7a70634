import { z } from "zod";
import { fenceUntrusted } from "../formatUntrusted.ts";
import { defineTool, type FollowContext, type ToolSpec } from "../toolSpec.ts";

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

/**
 * run_materialization with wait_seconds: polls the run's status as the caller until it ends or
 * the time is up, reporting rows loaded and the current step as MCP progress.
 */
async function followRun(ctx: FollowContext<{ wait_seconds?: number }>): Promise<Record<string, unknown>> {
  const wait = ctx.input.wait_seconds ?? 0;
  if (wait <= 0) return ctx.row;
  const until = Date.now() + wait * 1000;
  let last = 0;
  let lastMessage = "";
  for (;;) {
    const [status] = await ctx.query("select * from sextant.get_materialization_status($1)", [ctx.row.run_id]);
    if (!status) return ctx.row;
    const entities = (status.entities ?? {}) as Record<string, { rows?: number }>;
    const rows = Object.values(entities).reduce((n, e) => n + (e.rows ?? 0), 0);
    const message = `${status.status}: ${status.current_step ?? "waiting for a worker"} (${rows} rows loaded)`;
    if (message !== lastMessage) {
      last = Math.max(last + 1, rows);
      lastMessage = message;
      await ctx.progress(last, message);
    }
    if (FINISHED.has(status.status as string) || Date.now() >= until || ctx.signal?.aborted) {
      return { ...status, waited: !FINISHED.has(status.status as string) ? "timed out; poll get_materialization_status" : undefined };
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Materialization area: sql/materialize.sql. */
export const materializeTools: ToolSpec[] = [
  defineTool({
    name: "provision_schema",
    title: "Provision a schema",
    description: "Create schema t_<tenant>__<name>, readable by your tenant only; ttl_hours drops it later. Analysts+.",
    input: { name: z.string(), ttl_hours: z.number().optional().describe("1-8760") },
    sql: "select * from sextant.provision_schema($1, $2)",
    args: ({ name, ttl_hours }) => [name, ttl_hours ?? null],
    result: "one",
    writes: true,
  }),
  defineTool({
    name: "teardown_schema",
    title: "Tear down a schema",
    description: "Drop a schema you provisioned, with its contents. Analysts+.",
    input: { name: z.string() },
    sql: "select sextant.teardown_schema($1) as dropped_schema",
    args: ({ name }) => [name],
    result: "one",
    writes: true,
  }),
  defineTool({
    name: "list_pipelines",
    title: "List pipelines",
    description: "Your pipelines (source, entities, SQL models), schedule and last run.",
    input: {},
    sql: "select * from sextant.list_pipelines()",
    args: () => [],
    result: "rows",
  }),
  defineTool({
    name: "run_materialization",
    title: "Run a pipeline",
    description: "Reload a pipeline (full refresh) into your schema; returns a run id. Readers see the old tables until the new ones are complete. Analysts+.",
    input: {
      pipeline: z.string(),
      entities: z.array(z.string()).optional().describe("default: all"),
      wait_seconds: z.number().min(0).max(300).optional()
        .describe("wait for the end, with progress (default 0)"),
    },
    sql: "select id as run_id, status, entities, created_at from sextant.run_materialization($1, (select array_agg(e) from jsonb_array_elements_text($2::jsonb) as e))",
    args: ({ pipeline, entities }) => [pipeline, entities ? JSON.stringify(entities) : null],
    result: "one",
    writes: true,
    follow: followRun,
  }),
  defineTool({
    name: "get_materialization_status",
    title: "Status of a pipeline run",
    description: "Status of a run: rows per entity, step, error.",
    input: { run_id: z.number() },
    sql: "select * from sextant.get_materialization_status($1)",
    args: ({ run_id }) => [run_id],
    result: "one",
    shape: (row) => {
      if (!row.run_id) return { text: "no such run (or not your tenant's)", structured: { found: false } };
      // Steps and errors quote the source's answers and the pipeline's own fields: others' text.
      return { text: fenceUntrusted(JSON.stringify(row), "JSON", "the pipeline and its source"), structured: row };
    },
  }),
  defineTool({
    name: "cancel_materialization",
    title: "Cancel a pipeline run",
    description: "Cancel a run; the old tables stay. Analysts+.",
    input: { run_id: z.number() },
    sql: "select id as run_id, status, cancel_requested from sextant.cancel_materialization($1)",
    args: ({ run_id }) => [run_id],
    result: "one",
    writes: true,
  }),
];
