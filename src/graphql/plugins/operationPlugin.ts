import { isAsyncIterable } from "postgraphile/grafast";
import {
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  getDirectiveValues,
  getOperationAST,
  valueFromASTUntyped,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from "postgraphile/graphql";
import type { OperationGate } from "../../audit/operation.ts";
import type { Principal } from "../../auth/principal.ts";
import { callerGoneError, failedForCallerGone, toPublicError } from "../../db/errors.ts";
import { costError, measureOperation, type CostLimits } from "../cost.ts";
import { admitted } from "../admit.ts";

interface RootField {
  /** The key in `data` (alias or name). */
  key: string;
  name: string;
  sql?: string;
}

/**
 * The root fields a request runs (fragments expanded, @skip/@include applied, introspection
 * left out), each once per response key: these are its operations.
 */
export function rootFields(document: DocumentNode, operationName: string | null | undefined, variables: Record<string, unknown> | undefined): RootField[] {
  const op = getOperationAST(document, operationName);
  if (!op) return [];
  const fragments: Record<string, FragmentDefinitionNode> = {};
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments[def.name.value] = def;
  const out = new Map<string, RootField>();
  const included = (node: FieldNode | { directives?: FieldNode["directives"] }) =>
    !getDirectiveValues(GraphQLSkipDirective, node as FieldNode, variables)?.if &&
    getDirectiveValues(GraphQLIncludeDirective, node as FieldNode, variables)?.if !== false;
  const walk = (set: SelectionSetNode, seen: string[]) => {
    for (const sel of set.selections) {
      if (!included(sel)) continue;
      if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const frag = fragments[sel.name.value];
        if (frag && !seen.includes(frag.name.value)) walk(frag.selectionSet, [...seen, frag.name.value]);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        walk(sel.selectionSet, seen);
      } else if (!sel.name.value.startsWith("__")) {
        const key = sel.alias?.value ?? sel.name.value;
        if (out.has(key)) continue;
        const sqlArg = sel.arguments?.find((a) => a.name.value === "sql");
        const sql = sqlArg ? valueFromASTUntyped(sqlArg.value, variables) : undefined;
        out.set(key, { key, name: sel.name.value, sql: typeof sql === "string" ? sql : undefined });
      }
    }
  };
  walk(op.selectionSet, []);
  return [...out.values()];
}

/** Rows a field returned, as MCP counts them: a result's rows, a connection's nodes, a list's items. */
function rowsOf(value: unknown): number {
  if (value == null) return 0;
  if (Array.isArray(value)) return value.length;
  if (typeof value === "object") {
    const v = value as { rows?: unknown; nodes?: unknown; rowCount?: unknown };
    if (Array.isArray(v.rows)) return v.rows.length;
    if (Array.isArray(v.nodes)) return v.nodes.length;
    if (typeof v.rowCount === "number") return v.rowCount;
  }
  return 1;
}

function graphqlError(error: unknown): GraphQLError {
  const pub = toPublicError(error);
  return new GraphQLError(pub.message, { extensions: { code: pub.code, ...(pub.hint ? { hint: pub.hint } : {}), ...(pub.detail ? { detail: pub.detail } : {}) } });
}

/**
 * GraphQL's door into the operation gate (src/audit/operation.ts), around every execution:
 * the cost is measured again with the request's variables (a `first: $n` the validation rule
 * could not see), every root field is counted against the rate limits (the first one was
 * counted by admitRequest; the rest all or nothing) and audited with its rows, time and
 * outcome. Query and mutation fields alike.
 */
export function operationPlugin(gate: OperationGate, limits: CostLimits): GraphileConfig.Plugin {
  return {
    name: "SextantOperationPlugin",
    version: "0.0.0",
    grafast: {
      middleware: {
        async execute(next, event) {
          const { args } = event;
          const principal = (args.contextValue as { principal?: Principal } | undefined)?.principal;
          const variables = (args.variableValues ?? undefined) as Record<string, unknown> | undefined;
          const op = getOperationAST(args.document, args.operationName);
          if (op && args.variableValues) {
            const fragments: Record<string, FragmentDefinitionNode> = {};
            for (const def of args.document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments[def.name.value] = def;
            const tooCostly = costError(measureOperation(args.schema, op, fragments, limits, variables), limits);
            if (tooCostly) return { errors: [tooCostly] };
          }
          const fields = rootFields(args.document, args.operationName, variables);
          if (!principal || fields.length === 0) return next();
          const started = performance.now();
          const req = (args.requestContext as { expressv4?: { req?: object } } | undefined)?.expressv4?.req;
          const counted = req && admitted.has(req) ? 1 : 0;
          try {
            if (fields.length > counted) await gate.admit(principal, fields.length - counted);
          } catch (error) {
            // One event for the refused request (not one per field: a refusal must stay cheap).
            gate.record(principal, { tool: "graphql", sql: fields.map((f) => f.key).join(", ") }, { started, failure: toPublicError(error) });
            const retry = /Retry after (\d+) seconds/.exec(String((error as { detail?: unknown }).detail ?? ""));
            const res = (args.requestContext as { expressv4?: { res?: { setHeader(n: string, v: string): void } } } | undefined)?.expressv4?.res;
            if (retry) res?.setHeader("Retry-After", retry[1]!);
            return { errors: [graphqlError(error)] };
          }
          let result: Awaited<ReturnType<typeof next>>;
          // A field whose SQL was cancelled once the client had gone failed because it went; any
          // other failure keeps its own code (a refusal before the client left is audited as
          // itself, not hidden behind SX499 by leaving during a slower field).
          const gone = (args.contextValue as { callerSignal?: AbortSignal } | undefined)?.callerSignal;
          const failureOf = (error: unknown) =>
            toPublicError(gone?.aborted && failedForCallerGone(error) ? callerGoneError() : error);
          try {
            result = await next();
          } catch (error) {
            for (const f of fields) gate.record(principal, { tool: `graphql:${f.name}`, sql: f.sql }, { started, failure: failureOf(error) });
            throw error;
          }
          if (isAsyncIterable(result)) {
            for (const f of fields) gate.record(principal, { tool: `graphql:${f.name}`, sql: f.sql }, { started });
            return result;
          }
          const data = (result.data ?? {}) as Record<string, unknown>;
          for (const f of fields) {
            const error = result.errors?.find((e) => e.path?.[0] === f.key);
            const failure = error ? failureOf(error.originalError ?? { code: "SX400", message: error.message }) : undefined;
            gate.record(principal, { tool: `graphql:${f.name}`, sql: f.sql }, { started, failure, rowCount: failure ? undefined : rowsOf(data[f.key]) });
          }
          return result;
        },
      },
    },
  };
}
