import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { SextantError } from "../db/errors.ts";

export interface CloudSource {
  /** e.g. https://cloud.getdbt.com (or a regional / single-tenant host). */
  baseUrl: string;
  accountId: string;
  /** A run id, or a job id (its latest successful run's artifacts). */
  runId?: string;
  jobId?: string;
  token: string;
}

/**
 * Downloads manifest.json (required), catalog.json and run_results.json (when the run has
 * them) from the dbt Cloud Administrative API v2 into `dir`, streaming each to disk.
 */
export async function downloadCloudArtifacts(src: CloudSource, dir: string): Promise<string[]> {
  if (!src.runId === !src.jobId) throw new SextantError("SX400", "give exactly one of a dbt Cloud run id or job id");
  const base = `${src.baseUrl.replace(/\/$/, "")}/api/v2/accounts/${encodeURIComponent(src.accountId)}`;
  const scope = src.runId ? `runs/${encodeURIComponent(src.runId)}` : `jobs/${encodeURIComponent(src.jobId!)}`;
  const got: string[] = [];
  for (const name of ["manifest.json", "catalog.json", "run_results.json"]) {
    let res: Response;
    try {
      res = await fetch(`${base}/${scope}/artifacts/${name}`, { headers: { authorization: `Token ${src.token}`, accept: "application/json" } });
    } catch (error) {
      throw new SextantError("SX400", `cannot reach dbt Cloud at ${src.baseUrl}: ${(error as Error).message}`);
    }
    if (res.status === 404 && name !== "manifest.json") continue;
    if (res.status === 401 || res.status === 403) {
      throw new SextantError("SX403", `dbt Cloud refused the token (${res.status})`, "Check DBT_CLOUD_TOKEN and the account id.");
    }
    if (!res.ok || !res.body) throw new SextantError("SX404", `dbt Cloud has no ${name} for ${scope} (HTTP ${res.status})`);
    await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream), fs.createWriteStream(path.join(dir, name)));
    got.push(name);
  }
  return got;
}
