import { Transform, type TransformCallback } from "node:stream";
import { SextantError } from "../db/errors.ts";

/**
 * Bounds on dbt artifacts arriving from outside (POST /dbt/upload, `sextant dbt load`). A
 * compressed body or file says nothing trustworthy about what it expands to (a zip's sizes
 * are whatever its writer put there), so every inflating stream is counted as it runs and
 * stopped the moment a bound is crossed.
 */
export interface UploadLimits {
  /** Bytes of the request body as sent (SEXTANT_UPLOAD_LIMIT_MB). */
  compressedBytes: number;
  /** Bytes of JSON after decompression, all files of one upload or load together (SEXTANT_UPLOAD_EXPANDED_LIMIT_MB). */
  expandedBytes: number;
  /** Entries in an uploaded zip, counted from its directory before anything is read (SEXTANT_UPLOAD_MAX_ENTRIES). */
  entries: number;
  /** Largest expansion ratio of one compressed stream, checked once it has produced more than RATIO_FLOOR bytes. */
  ratio: number;
}

const MB = 1024 * 1024;

/** Real dbt artifacts deflate about 10-13:1; a ratio of 100 is far above any of them and far below a bomb's ~1000:1. */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { compressedBytes: 200 * MB, expandedBytes: 1024 * MB, entries: 20_000, ratio: 100 };

/** Small streams may be all whitespace: the ratio is judged only past this many output bytes. */
const RATIO_FLOOR = 16 * MB;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${value}"`);
  return n;
}

/** The upload limits from the environment (README lists the variables). */
export function readUploadLimits(env: NodeJS.ProcessEnv): UploadLimits {
  const d = DEFAULT_UPLOAD_LIMITS;
  return {
    compressedBytes: Math.round(positive("SEXTANT_UPLOAD_LIMIT_MB", env.SEXTANT_UPLOAD_LIMIT_MB, d.compressedBytes / MB) * MB),
    expandedBytes: Math.round(positive("SEXTANT_UPLOAD_EXPANDED_LIMIT_MB", env.SEXTANT_UPLOAD_EXPANDED_LIMIT_MB, d.expandedBytes / MB) * MB),
    entries: Math.floor(positive("SEXTANT_UPLOAD_MAX_ENTRIES", env.SEXTANT_UPLOAD_MAX_ENTRIES, d.entries)),
    ratio: d.ratio,
  };
}

/** A byte count as "N MB" for messages. */
export const megabytes = (bytes: number) => `${Math.round((bytes / MB) * 10) / 10} MB`;

/** SX413 for an upload that expands past the limit (said in the message). */
export function expandedTooLarge(limits: UploadLimits): SextantError {
  return new SextantError(
    "SX413",
    `the dbt artifacts expand to more than ${megabytes(limits.expandedBytes)}, the limit after decompression`,
    "Upload only manifest.json, catalog.json and run_results.json, or ask the operator to raise SEXTANT_UPLOAD_EXPANDED_LIMIT_MB.",
    "Decompression stopped at the limit; nothing was loaded.",
  );
}

/**
 * The bytes of one load after decompression, across all its files: `meter` gives a counting
 * pass-through for one stream, failing with SX413 as soon as the total passes the limit or
 * the stream expands more than `limits.ratio` times the compressed bytes it was fed.
 */
export class ExpansionBudget {
  private total = 0;
  constructor(readonly limits: UploadLimits) {}

  /**
   * A Transform to put right after an inflater. `compressedIn` says how many compressed bytes
   * went in so far (a fixed number for a zip entry, a counter for a gzip stream), or is absent
   * for a plain file (no ratio to judge).
   */
  meter(compressedIn?: () => number): Transform {
    let out = 0;
    const budget = this;
    return new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        out += chunk.length;
        budget.total += chunk.length;
        if (budget.total > budget.limits.expandedBytes) return done(expandedTooLarge(budget.limits));
        if (compressedIn && out > RATIO_FLOOR && out > budget.limits.ratio * Math.max(1, compressedIn())) {
          return done(
            new SextantError(
              "SX413",
              `a compressed artifact expands more than ${budget.limits.ratio} times its size`,
              "Upload artifacts as dbt wrote them; real manifests compress about 10:1.",
              "Decompression stopped; nothing was loaded.",
            ),
          );
        }
        done(null, chunk);
      },
    });
  }

  /** A pass-through that counts compressed bytes flowing into an inflater; read with `.bytes()`. */
  static inputCounter(): { stream: Transform; bytes: () => number } {
    let n = 0;
    const stream = new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        n += chunk.length;
        done(null, chunk);
      },
    });
    return { stream, bytes: () => n };
  }
}

/** SX413 for a zip with more entries than allowed. */
export function tooManyEntries(count: number, limits: UploadLimits): SextantError {
  return new SextantError(
    "SX413",
    `the zip holds ${count} entries; the limit is ${limits.entries}`,
    "Zip only the dbt artifacts (manifest.json, catalog.json, run_results.json), or ask the operator to raise SEXTANT_UPLOAD_MAX_ENTRIES.",
  );
}
