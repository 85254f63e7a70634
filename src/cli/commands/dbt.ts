import type { Command } from "commander";
import { createEmbedder } from "../../dbt/embeddings.ts";
import { withContext } from "../context.ts";
import { dbtLoad, type DbtLoadOptions } from "../dbtLoad.ts";

/** `sextant dbt load`: a dbt project's artifacts into a tenant's knowledge base. */
export default function register(program: Command): void {
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
    .action((targetDir: string | undefined, opts: DbtLoadOptions) =>
      withContext(({ admin, config }) =>
        dbtLoad(admin, targetDir, { ...opts, embedder: createEmbedder(config.embeddings), limits: config.upload }),
      ),
    );
}
