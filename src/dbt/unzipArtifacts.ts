import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import yauzl from "yauzl";
import { SextantError } from "../db/errors.ts";

const WANTED = new Set(["manifest.json", "catalog.json", "run_results.json", "manifest.json.gz", "catalog.json.gz", "run_results.json.gz"]);

/**
 * Extracts the dbt artifacts (by file name, in any folder of the archive) from a zip file
 * into `dir`, streaming each entry. Other entries are skipped; nothing is written outside dir.
 */
export function unzipArtifacts(zipFile: string, dir: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipFile, { lazyEntries: true }, (error, zip) => {
      if (error || !zip) return reject(new SextantError("SX400", "the upload is not a readable zip archive", "Send a zip of the dbt target directory."));
      const found: string[] = [];
      zip.on("error", reject);
      zip.on("end", () => resolve(found));
      zip.on("entry", (entry: yauzl.Entry) => {
        const name = path.posix.basename(entry.fileName);
        if (!WANTED.has(name) || found.includes(name)) return zip.readEntry();
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) return reject(err);
          pipeline(stream, fs.createWriteStream(path.join(dir, name)))
            .then(() => {
              found.push(name);
              zip.readEntry();
            }, reject);
        });
      });
      zip.readEntry();
    });
  });
}
