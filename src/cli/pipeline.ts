import cliProgress from "cli-progress";
import type pg from "pg";
import { settingsSql } from "../auth/pgSettings.ts";
import { buildPrincipal } from "../auth/principal.ts";
import { inTransaction } from "../db/transaction.ts";
import { readPipelineFile } from "../pipelines/definition.ts";
import { pollRun, rowsLoaded } from "../pipelines/pollRun.ts";

/**
 * Runs `fn` in a transaction as one of the tenant's roles, with the same settings as every other
 * door (src/auth/pgSettings.ts: role, the tenant's statement timeout, who is asking), so RLS,
 * level checks and limits apply as for any caller.
 */
export async function asTenant<T>(admin: pg.ClientBase, tenant: string, level: "viewer" | "analyst" | "admin", fn: () => Promise<T>): Promise<T> {
  const principal = await buildPrincipal(admin, { tenant, accessLevel: level, subject: `cli:${process.env.USER ?? "admin"}`, authMethod: "local" });
  return inTransaction(admin, async () => {
    await admin.query(settingsSql(admin, principal));
    return fn();
  });
}

/** `sextant pipeline create`: the definition and its secrets in one transaction, as the tenant's admin. */
export async function createPipeline(admin: pg.ClientBase, tenant: string, file: string, extraSecrets: Record<string, string>): Promise<string> {
  const { definition, secrets } = readPipelineFile(file);
  const all = { ...secrets, ...extraSecrets };
  return asTenant(admin, tenant, "admin", async () => {
    const { rows } = await admin.query("select name, target_schema from sextant.create_pipeline($1)", [JSON.stringify(definition)]);
    for (const [name, value] of Object.entries(all)) {
      await admin.query("select sextant.set_pipeline_secret($1, $2, $3)", [rows[0].name, name, value]);
    }
    const models = definition.models.length;
    return `pipeline ${rows[0].name} saved (target ${rows[0].target_schema}; ${definition.entities.length} entities, ${models} models, ${Object.keys(all).length} secrets)`;
  });
}

interface Status {
  run_id: number;
  status: string;
  current_step: string | null;
  entities: Record<string, { rows?: number; done?: boolean }>;
  error: string | null;
  elapsed_ms: number;
}

export async function runStatus(admin: pg.ClientBase, tenant: string, runId: number): Promise<Status> {
  const rows = await asTenant(admin, tenant, "viewer", async () => (await admin.query("select * from sextant.get_materialization_status($1)", [runId])).rows);
  if (!rows[0]) throw Object.assign(new Error(`run ${runId} does not exist in tenant ${tenant}`), { hint: "`sextant pipeline list --tenant " + tenant + "` shows the last runs." });
  return rows[0] as Status;
}

/**
 * `sextant pipeline run`: queues a run; with --wait, follows it with a progress bar on stderr
 * (rows loaded, current step) and exits 1 unless it succeeds. Ctrl-C cancels the run.
 */
export async function runPipeline(admin: pg.ClientBase, tenant: string, pipeline: string, opts: { entity: string[]; wait?: boolean }): Promise<void> {
  const run = await asTenant(admin, tenant, "admin", async () =>
    (await admin.query("select id, status from sextant.run_materialization($1, $2)", [pipeline, opts.entity.length ? opts.entity : null])).rows[0],
  );
  process.stdout.write(`run ${run.id} queued\n`);
  if (!opts.wait) return;
  const bar = new cliProgress.SingleBar(
    { format: "{status} {bar} {value} rows | {step}", stream: process.stderr, hideCursor: true, noTTYOutput: false },
    cliProgress.Presets.shades_classic,
  );
  let cancelled = false;
  const onSigint = () => {
    cancelled = true;
  };
  process.on("SIGINT", onSigint);
  bar.start(0, 0, { status: "queued", step: "" });
  let status: Status;
  try {
    status = (await pollRun(
      async () => {
        if (cancelled) {
          await asTenant(admin, tenant, "admin", () => admin.query("select sextant.cancel_materialization($1)", [run.id]));
          cancelled = false;
        }
        return runStatus(admin, tenant, run.id);
      },
      {
        onStatus: (s) => {
          const rows = rowsLoaded(s);
          bar.setTotal(Math.max(rows, 1));
          bar.update(rows, { status: s.status, step: s.current_step ?? "" });
        },
      },
    ))!;
  } finally {
    bar.stop();
    process.off("SIGINT", onSigint);
  }
  const summary = Object.entries(status.entities ?? {}).map(([e, p]) => `${e}: ${p.rows ?? 0} rows`).join(", ");
  process.stdout.write(`run ${run.id} ${status.status} in ${(status.elapsed_ms / 1000).toFixed(1)} s${summary ? ` (${summary})` : ""}\n`);
  if (status.status !== "succeeded") {
    throw Object.assign(new Error(`run ${run.id} ${status.status}${status.error ? `: ${status.error}` : ""}`), {});
  }
}
