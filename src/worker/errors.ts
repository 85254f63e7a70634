import { SextantError } from "../db/errors.ts";

/**
 * A failure of a run. `transient` failures (network, 429/5xx after the in-request retries)
 * are retried by graphile-worker with backoff; the others end the run as failed at once.
 */
export class RunError extends SextantError {
  constructor(
    message: string,
    readonly transient = false,
    hint?: string,
  ) {
    super("SX400", message, hint);
  }
}

/** The run was cancelled (or taken over by another worker): stop, keep the old tables. */
export class RunStopped extends Error {}

const TRANSIENT_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EAI_AGAIN", "UND_ERR_SOCKET"]);

/** Whether an error is worth another attempt of the whole job. */
export function isTransient(error: unknown): boolean {
  if (error instanceof RunError) return error.transient;
  const code = (error as { code?: string; cause?: { code?: string } })?.code ?? (error as { cause?: { code?: string } })?.cause?.code;
  // PostgreSQL: connection failures (08), operator intervention (57P01..), serialization (40).
  // 55P03: lock_timeout (another transaction held a table too long).
  return !!code && (TRANSIENT_CODES.has(code) || /^(08|40|57P0|55P03)/.test(code));
}

/** One line for the run's error column: the message, and PostgreSQL's hint when there is one. */
export function describeRunError(error: unknown): string {
  const e = error as { message?: string; hint?: string; where?: string };
  const message = e?.message ?? String(error);
  return e?.hint ? `${message} (hint: ${e.hint})` : message;
}
