import { RunError } from "../errors.ts";
import { csvSource } from "./csv.ts";
import { httpSource } from "./http.ts";
import type { SourceKind } from "./kind.ts";
import { postgresSource } from "./postgres.ts";

/**
 * Every kind of source a pipeline may name. A new kind: its loader file (a SourceKind), one line
 * here, its test, and the same name in sextant_exec.source_kinds() (sql/), which pipeline
 * definitions are checked against; test/materializeSources.test.ts keeps the two lists equal.
 */
export const SOURCE_KINDS: Readonly<Record<string, SourceKind>> = {
  http: httpSource,
  csv: csvSource,
  postgres: postgresSource,
};

/** The loader of a kind; an unknown kind is the run's error. */
export function sourceKind(kind: string): SourceKind {
  const found = Object.hasOwn(SOURCE_KINDS, kind) ? SOURCE_KINDS[kind] : undefined;
  if (!found) throw new RunError(`source kind ${kind} is not one of ${Object.keys(SOURCE_KINDS).join(", ")}`);
  return found;
}
