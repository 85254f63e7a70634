import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Express, NextFunction, Request, Response } from "express";
import type pg from "pg";
import type { OperationGate } from "../audit/operation.ts";
import type { Authenticate } from "../auth/authenticate.ts";
import { bearerAuth, principalFromAuth } from "../auth/bearer.ts";
import { callerGoneError, SextantError, toPublicError } from "../db/errors.ts";
import type { Embedder } from "./embeddings.ts";
import { loadDbtArtifacts } from "./loadArtifacts.ts";
import { unzipArtifacts } from "./unzipArtifacts.ts";
import { DEFAULT_UPLOAD_LIMITS, expandedTooLarge, megabytes, type UploadLimits } from "./uploadLimits.ts";

/** Streams the request body to `file`, refusing more than `limit` bytes (`tooLarge` says which limit). */
async function saveBody(req: Request, file: string, limit: number, tooLarge: () => Error): Promise<void> {
  if (Number(req.headers["content-length"]) > limit) throw tooLarge(); // declared past it: nothing to read
  let bytes = 0;
  const out = fs.createWriteStream(file);
  await new Promise<void>((resolve, reject) => {
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) {
        req.unpipe(out);
        out.destroy();
        reject(tooLarge());
      }
    });
    // A request stream fails only when its connection does: the client left or was cut off
    // (SEXTANT_HTTP_REQUEST_TIMEOUT_MS). The caller's doing, not an internal error.
    req.on("error", () => {
      out.destroy();
      reject(callerGoneError());
    });
    out.on("error", reject);
    out.on("finish", () => resolve());
    req.pipe(out);
  });
}

/**
 * POST /dbt/upload — a tenant admin uploads dbt artifacts: a zip of the target directory
 * (application/zip), or manifest.json alone (application/json, or application/gzip). The
 * project replaces the tenant's previous version atomically (?project= names it). Bounded by
 * `limits` (compressed body, bytes after decompression counted while inflating, zip entries):
 * a bound that is hit answers SX413, loads nothing and leaves no temporary file.
 */
export function installDbtUpload(
  app: Express,
  deps: {
    pool: pg.Pool;
    authenticate: Authenticate;
    /** The audit and rate-limit step every door passes through (src/audit/operation.ts). */
    gate?: OperationGate;
    resource?: { url: string; metadataUrl: string };
    embedder?: Embedder;
    logError?: (requestId: string, error: unknown) => void;
    limits?: UploadLimits;
  },
) {
  const limits = deps.limits ?? DEFAULT_UPLOAD_LIMITS;
  const bodyTooLarge = () =>
    new SextantError("SX413", `the upload is larger than ${megabytes(limits.compressedBytes)}`, "Ask the operator to raise SEXTANT_UPLOAD_LIMIT_MB, or load from a directory with the CLI.");
  app.post("/dbt/upload", bearerAuth(deps.authenticate, deps.resource), async (req: Request, res: Response, next: NextFunction) => {
    const principal = principalFromAuth(req.auth);
    const started = performance.now();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-upload-"));
    let failure: ReturnType<typeof toPublicError> | undefined;
    try {
      await deps.gate?.admit(principal);
      if (principal.accessLevel !== "admin") {
        throw new SextantError("SX403", "loading dbt artifacts needs the admin role", "Use a tenant admin's token.");
      }
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
      if (type === "application/zip") {
        await saveBody(req, path.join(dir, "upload.zip"), limits.compressedBytes, bodyTooLarge);
        const found = await unzipArtifacts(path.join(dir, "upload.zip"), dir, limits);
        fs.rmSync(path.join(dir, "upload.zip")); // the extracted files are all the load needs on disk
        if (!found.some((f) => f.startsWith("manifest.json"))) {
          throw new SextantError("SX400", "the zip holds no manifest.json", "Zip the dbt target directory (manifest.json, catalog.json, run_results.json).");
        }
      } else if (type === "application/json") {
        // Plain JSON is already its expanded size: the smaller bound applies.
        const plainTooLarge = limits.expandedBytes < limits.compressedBytes ? () => expandedTooLarge(limits) : bodyTooLarge;
        await saveBody(req, path.join(dir, "manifest.json"), Math.min(limits.compressedBytes, limits.expandedBytes), plainTooLarge);
      } else if (type === "application/gzip") {
        await saveBody(req, path.join(dir, "manifest.json.gz"), limits.compressedBytes, bodyTooLarge);
      } else {
        throw new SextantError("SX400", `content type ${type || "(none)"} is not accepted`, "Send application/zip, application/json or application/gzip.");
      }
      const client = await deps.pool.connect();
      try {
        const project = typeof req.query.project === "string" ? req.query.project : undefined;
        const result = await loadDbtArtifacts(client, { tenant: principal.tenant, dir, project, embedder: deps.embedder, limits });
        let embeddings = result.embeddings;
        if (embeddings && "error" in embeddings) {
          // The endpoint is the operator's: its address and answers go to the server log, not to the tenant.
          deps.logError?.(randomUUID(), new Error(`embedding dbt project ${result.project} of ${principal.tenant}: ${embeddings.error}`));
          embeddings = { error: "the embeddings endpoint failed (the server log has the reason); search works by words until the next load" };
        }
        res.json({ project: result.project, counts: result.counts, ms: result.ms, ...(embeddings && { embeddings }) });
      } finally {
        client.release();
      }
    } catch (error) {
      failure = toPublicError(error); // for the audit only; the error handler answers and logs
      // Drain what is left of a refused body, unless it is too large: that is not read to its
      // end (a declared 10^16 bytes, or chunks without end), the connection is closed instead.
      if (failure.code === "SX413") res.setHeader("Connection", "close");
      else req.resume();
      next(error);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      deps.gate?.record(principal, { tool: "dbt_upload" }, { started, failure });
    }
  });
}
