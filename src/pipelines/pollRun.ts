/** The states a run does not leave (sextant.materialization_runs.status). */
export const FINISHED_RUN_STATES: ReadonlySet<string> = new Set(["succeeded", "failed", "cancelled"]);

/** Rows loaded so far over a run's entities (get_materialization_status's `entities`). */
export function rowsLoaded(status: { entities?: unknown }): number {
  const entities = (status.entities ?? {}) as Record<string, { rows?: number }>;
  return Object.values(entities).reduce((n, e) => n + (e?.rows ?? 0), 0);
}

export interface PollOptions<S> {
  /** When to stop; default: the run has finished (succeeded, failed or cancelled). */
  done?: (status: S) => boolean;
  /** Date.now() after which the last status is returned as it is; default: none. */
  deadline?: number;
  /** Stops polling (the last status is returned). */
  signal?: AbortSignal;
  /** Pause between reads; default 500 ms. */
  intervalMs?: number;
  /** Called with every status read (progress bars, MCP progress notifications). */
  onStatus?: (status: S) => Promise<void> | void;
}

/**
 * The one loop that follows a run (the MCP tool's wait_seconds, `sextant pipeline run --wait`,
 * the tests): reads its status until `done`, the deadline or the signal, and returns the last
 * status read — undefined when `read` finds no run. The caller tells "done" from "timed out"
 * by asking `done` again.
 */
export async function pollRun<S extends { status: string }>(read: () => Promise<S | undefined>, opts: PollOptions<S> = {}): Promise<S | undefined> {
  const done = opts.done ?? ((s: S) => FINISHED_RUN_STATES.has(s.status));
  for (;;) {
    const status = await read();
    if (!status) return undefined;
    await opts.onStatus?.(status);
    if (done(status) || (opts.deadline !== undefined && Date.now() >= opts.deadline) || opts.signal?.aborted) return status;
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}
