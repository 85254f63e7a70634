import type pg from "pg";
import type { Logger } from "pino";
import { RunStopped } from "../errors.ts";

/** One entity to load: the builder's session (inside the entity's transaction) and where to put it. */
export interface EntityLoad {
  /** Logged in as the tenant's builder, in a transaction of this entity alone. */
  client: pg.ClientBase;
  /** The run's staging schema; the loader creates the table `entity.name` in it. */
  schema: string;
  entity: { name: string } & Record<string, unknown>;
  /** Reports a batch (rows so far, and what else the kind counts); throws RunStopped when the run is cancelled. */
  progress(counts: Record<string, number>): Promise<void>;
}

/** What a run gives every source kind, once: the operator's limits and the run's signal. */
export interface SourceDeps {
  /** host:port patterns a source may reach on private or loopback addresses (SEXTANT_SOURCE_ALLOW_HOSTS). */
  allowHosts: string[];
  /** The directory file sources are read from (SEXTANT_SOURCE_FILE_DIR). */
  fileDir: string;
  signal: AbortSignal;
  log: Logger;
}

/**
 * A kind of source (`source.kind` in a pipeline): `open` is called once per run with the
 * source's definition (secrets resolved) and returns the loader of its entities, which creates
 * and fills one staging table and returns its row count. Register a new kind in ./index.ts.
 */
export interface SourceKind {
  open(source: Record<string, unknown>, deps: SourceDeps): (load: EntityLoad) => Promise<number>;
}

/**
 * Adapts `progress` to the byte meter of streaming loaders (../meter.ts): bytes and lines so
 * far; resolves true when the run should stop. `headerLines` are not rows.
 */
export function meterReport(progress: EntityLoad["progress"], headerLines = 0): (bytes: number, lines: number) => Promise<boolean> {
  return (bytes, lines) =>
    progress({ bytes, rows: Math.max(0, lines - headerLines) }).then(() => false, (e) => {
      if (e instanceof RunStopped) return true;
      throw e;
    });
}
