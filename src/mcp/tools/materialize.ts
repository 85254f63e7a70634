import { z } from "zod";
import { FINISHED_RUN_STATES, pollRun, rowsLoaded } from "../../pipelines/pollRun.ts";
import { fenceUntrusted } from "../formatUntrusted.ts";
import { object, rowsOutput } from "../outputSchemas.ts";
import { defineTool, type FollowContext, type ToolSpec } from "../toolSpec.ts";

/**
 * run_materialization with wait_seconds: polls the run's status as the caller until it ends or
 * the time is up (src/pipelines/pollRun.ts), reporting rows loaded and the current step as MCP progress.
 */
async function followRun(ctx: FollowContext<{ wait_seconds?: number }>): Promise<Record<string, unknown>> {
  const wait = ctx.input.wait_seconds ?? 0;
  if (wait <= 0) return ctx.row;
  let last = 0;
  let lastMessage = "";
  const status = await pollRun(
    async () => (await ctx.query("select * from sextant.get_materialization_status($1)", [ctx.row.run_id]))[0] as { status: string } | undefined,
    {
      deadline: Date.now() + wait * 1000,
      signal: ctx.signal,
      onStatus: async (s: Record<string, unknown>) => {
        const rows = rowsLoaded(s);
        const message = `${s.status}: ${s.current_step ?? "waiting for a worker"} (${rows} rows loaded)`;
        if (message !== lastMessage) {
          last = Math.max(last + 1, rows);
          lastMessage = message;
          await ctx.progress(last, message);
        }
      },
    },
  );
  if (!status) return ctx.row;
  return { ...status, waited: !FINISHED_RUN_STATES.has(status.status) ? "timed out; poll get_materialization_status" : undefined };
}

/** A run as the tools return it (sextant.materialization_runs / get_materialization_status). */
const runOutput = object(["run_id", "status"]);
// A bigint identity (from 1): bounded to the integers JSON carries exactly (zod's .int() max, 2^53 - 1).
const runId = z.number().int().min(1);

/** Materialization area: sql/materialize_*.sql. */
export const materializeTools: ToolSpec[] = [
  defineTool({
    name: "provision_schema",
    title: "Provision a schema",
    description: "Create schema t_<tenant>__<name>, readable by your tenant only; ttl_hours drops it later. Analysts+.",
    group: "materialization",
    input: { name: z.string(), ttl_hours: z.int32().min(1).max(8760).optional() },
    fn: "provision_schema",
    params: { name: "name", ttl_hours: "ttl_hours" },
    output: object(["schema_name"]),
    result: "one",
    writes: true,
  }),
  defineTool({
    name: "teardown_schema",
    title: "Tear down a schema",
    description: "Drop a schema you provisioned, with its contents. Analysts+.",
    group: "materialization",
    input: { name: z.string() },
    fn: "teardown_schema",
    params: { name: "name" },
    select: "{call} as dropped_schema",
    output: object(["dropped_schema"]),
    result: "one",
    writes: true,
    destructive: true,
    idempotent: true,
  }),
  defineTool({
    name: "list_pipelines",
    title: "List pipelines",
    description: "Your pipelines (source, entities, SQL models), schedule and last run.",
    group: "materialization",
    input: {},
    fn: "list_pipelines",
    params: {},
    output: rowsOutput,
    result: "rows",
  }),
  defineTool({
    name: "run_materialization",
    title: "Run a pipeline",
    description: "Reload a pipeline (full refresh); returns a run id. Readers keep the old tables until it completes. Analysts+.",
    group: "materialization",
    input: {
      pipeline: z.string(),
      entities: z.array(z.string()).optional().describe("default: all"),
      wait_seconds: z.number().min(0).max(300).optional()
        .describe("wait for the end, with progress"),
    },
    fn: "run_materialization",
    params: { pipeline: "pipeline", entities: "entities" },
    casts: { entities: "text[]" },
    select: "id as run_id, status, entities, created_at from {call}",
    output: runOutput,
    result: "one",
    writes: true,
    // A full refresh replaces the pipeline's tables.
    destructive: true,
    follow: followRun,
  }),
  defineTool({
    name: "get_materialization_status",
    title: "Status of a pipeline run",
    description: "Status of a run: rows per entity, step, error.",
    group: "materialization",
    input: { run_id: runId },
    fn: "get_materialization_status",
    params: { run_id: "run_id" },
    output: object(["found"], { found: "boolean" }),
    result: "one",
    shape: (row) => {
      if (!row.run_id) return { text: "no such run (or not your tenant's)", structured: { found: false } };
      // Steps and errors quote the source's answers and the pipeline's own fields: others' text.
      return { text: fenceUntrusted(JSON.stringify(row), "JSON", "the pipeline and its source"), structured: { found: true, ...row } };
    },
  }),
  defineTool({
    name: "cancel_materialization",
    title: "Cancel a pipeline run",
    description: "Cancel a run; the old tables stay. Analysts+.",
    group: "materialization",
    input: { run_id: runId },
    fn: "cancel_materialization",
    params: { run_id: "run_id" },
    select: "id as run_id, status, cancel_requested from {call}",
    output: runOutput,
    result: "one",
    writes: true,
    idempotent: true,
  }),
];
