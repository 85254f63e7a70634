import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import yauzl from "yauzl";
import { SextantError } from "../db/errors.ts";
import { DEFAULT_UPLOAD_LIMITS, ExpansionBudget, expandedTooLarge, tooManyEntries, type UploadLimits } from "./uploadLimits.ts";

const WANTED = new Set(["manifest.json", "catalog.json", "run_results.json", "manifest.json.gz", "catalog.json.gz", "run_results.json.gz"]);

const unreadable = (reason?: string) =>
  new SextantError("SX400", `the upload is not a readable zip archive${reason ? `: ${reason}` : ""}`, "Send a zip of the dbt target directory.");

/**
 * Extracts the dbt artifacts (by file name, in any folder of the archive) from a zip file
 * into `dir`, streaming each entry. Other entries are skipped; nothing is written outside dir.
 * Bounded by `limits`: a zip declaring more entries than allowed is refused before any is read,
 * and the extracted bytes are counted while inflating (the sizes a zip declares are only
 * trusted to refuse early, never to accept), so a bomb stops at the limit with SX413.
 */
export function unzipArtifacts(zipFile: string, dir: string, limits: UploadLimits = DEFAULT_UPLOAD_LIMITS): Promise<string[]> {
  const budget = new ExpansionBudget(limits);
  return new Promise((resolve, reject) => {
    // validateEntrySizes off: the budget counts the real bytes; a lying size gets SX413 from it, not a stack.
    yauzl.open(zipFile, { lazyEntries: true, validateEntrySizes: false }, (error, zip) => {
      if (error || !zip) return reject(unreadable());
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        try {
          zip.close();
        } catch {} // already closed by autoClose
        reject(err instanceof SextantError ? err : unreadable((err as Error)?.message));
      };
      if (zip.entryCount > limits.entries) return fail(tooManyEntries(zip.entryCount, limits));
      const found: string[] = [];
      let seen = 0;
      zip.on("error", fail);
      zip.on("end", () => {
        if (settled) return;
        settled = true;
        resolve(found);
      });
      zip.on("entry", (entry: yauzl.Entry) => {
        if (settled) return;
        if (++seen > limits.entries) return fail(tooManyEntries(seen, limits));
        const name = path.posix.basename(entry.fileName);
        if (!WANTED.has(name) || found.includes(name)) return zip.readEntry();
        // A declared size past the limit is refused at once; a small one proves nothing.
        if (entry.uncompressedSize > limits.expandedBytes) return fail(expandedTooLarge(limits));
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) return fail(err);
          pipeline(stream, budget.meter(() => entry.compressedSize), fs.createWriteStream(path.join(dir, name))).then(() => {
            found.push(name);
            zip.readEntry();
          }, fail);
        });
      });
      zip.readEntry();
    });
  });
}
