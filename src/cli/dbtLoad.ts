import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import cliProgress from "cli-progress";
import { InvalidArgumentError } from "commander";
import type pg from "pg";
import { downloadCloudArtifacts } from "../dbt/cloud.ts";
import type { Embedder } from "../dbt/embeddings.ts";
import { loadDbtArtifacts } from "../dbt/loadArtifacts.ts";
import type { UploadLimits } from "../dbt/uploadLimits.ts";

export interface DbtLoadOptions {
  tenant: string;
  project?: string;
  cloudAccount?: string;
  cloudRun?: string;
  cloudJob?: string;
  cloudUrl: string;
  /** The configured embeddings endpoint (SEXTANT_EMBEDDINGS_URL): nodes get vectors after the load. */
  embedder?: Embedder;
  /** Bounds the JSON read after gunzip (SEXTANT_UPLOAD_EXPANDED_LIMIT_MB): a .gz bomb stops with SX413. */
  limits?: UploadLimits;
}

/**
 * `sextant dbt load`: from a target directory, or from dbt Cloud into a temporary directory
 * (removed afterwards, whatever happens); a progress bar on stderr when it is a terminal.
 */
export async function dbtLoad(admin: pg.ClientBase, targetDir: string | undefined, opts: DbtLoadOptions): Promise<void> {
  let downloaded: string | undefined;
  try {
    let dir = targetDir;
    if (opts.cloudAccount) {
      if (!process.env.DBT_CLOUD_TOKEN) throw new InvalidArgumentError("set DBT_CLOUD_TOKEN to a dbt Cloud API token");
      downloaded = dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-dbt-cloud-"));
      await downloadCloudArtifacts(
        { baseUrl: opts.cloudUrl, accountId: opts.cloudAccount, runId: opts.cloudRun, jobId: opts.cloudJob, token: process.env.DBT_CLOUD_TOKEN },
        dir,
      );
    }
    if (!dir) throw new InvalidArgumentError("give a target directory, or --cloud-account with --cloud-run or --cloud-job");
    // cli-progress draws only on a terminal: logs and pipes stay clean.
    const bar = new cliProgress.SingleBar(
      { format: "loading {bar} {percentage}% | {value}/{total} KB", stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    const embedBar = new cliProgress.SingleBar(
      { format: "embedding {bar} {percentage}% | {value}/{total} nodes", stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    let embedding = false;
    const result = await loadDbtArtifacts(admin, {
      tenant: opts.tenant,
      dir,
      project: opts.project,
      onProgress: (read, total) => {
        if (!started) bar.start(Math.ceil(total / 1024), 0), (started = true);
        bar.update(Math.ceil(read / 1024));
      },
      embedder: opts.embedder,
      limits: opts.limits,
      onEmbedProgress: (done, total) => {
        if (started) bar.stop(), (started = false);
        if (!embedding) embedBar.start(total, 0), (embedding = true);
        embedBar.update(done);
      },
    });
    if (started) bar.stop();
    if (embedding) embedBar.stop();
    const c = result.counts;
    process.stdout.write(
      `loaded dbt project ${result.project} for ${opts.tenant} in ${result.ms} ms: ${c.node ?? 0} nodes` +
        `${c.catalog_node ? `, ${c.catalog_node} catalog entries` : ""}${c.run_result ? `, ${c.run_result} run results` : ""}\n`,
    );
    if (result.embeddings && "stored" in result.embeddings) {
      process.stdout.write(`embedded ${result.embeddings.stored} nodes with ${opts.embedder!.model}: search blends meaning in\n`);
    } else if (result.embeddings) {
      process.stderr.write(`warning: no vectors stored (${result.embeddings.error}); search works by words only until the next load\n`);
    }
  } finally {
    if (downloaded) fs.rmSync(downloaded, { recursive: true, force: true });
  }
}
