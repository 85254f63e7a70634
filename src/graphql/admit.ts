import type { OperationGate } from "../audit/operation.ts";
import type { Principal } from "../auth/principal.ts";
import { toPublicError } from "../db/errors.ts";

// The HTTP door of GraphQL, apart from PostGraphile: the server mounts it at start, and loads
// PostGraphile itself only once it listens (src/graphql/mount.ts).

/** Requests already counted as one call at the HTTP door (admitRequest); execution counts the rest. */
export const admitted = new WeakSet<object>();

/**
 * Express middleware before GraphQL: counts every request as one call before it is parsed,
 * so requests that never execute (invalid, too costly, introspection only) are bounded too;
 * the execute step then counts the request's other root fields. Refused: SX429 with HTTP 429.
 */
export function admitRequest(gate: OperationGate, principalOf: (req: unknown) => Principal) {
  return (req: object, res: { setHeader(n: string, v: string): void }, next: (error?: unknown) => void) => {
    const principal = principalOf(req);
    const started = performance.now();
    gate.admit(principal, 1).then(
      () => {
        admitted.add(req);
        next();
      },
      (error) => {
        gate.record(principal, { tool: "graphql" }, { started, failure: toPublicError(error) });
        next(error);
      },
    );
  };
}
