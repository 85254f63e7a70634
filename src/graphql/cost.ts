import {
  GraphQLError,
  Kind,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  isInterfaceType,
  valueFromASTUntyped,
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from "postgraphile/graphql";

/** The bounds on one GraphQL request, checked before it runs (README: GraphQL cost). */
export interface CostLimits {
  /** Levels of nested fields (introspection's own `__schema`/`__type` subtrees excepted). */
  maxDepth: number;
  /** Fields with an alias: each alias of a field runs it again. */
  maxAliases: number;
  /** Estimated values in the answer: every field, times the page sizes of the lists above it. */
  maxNodes: number;
}

export const DEFAULT_COST_LIMITS: CostLimits = { maxDepth: 10, maxAliases: 100, maxNodes: 50_000 };

/** A list or connection without `first`/`last` is assumed this long (a connection's page). */
const ASSUMED_PAGE = 100;
/** Introspection lists (types, fields, args) are shorter than data. */
const ASSUMED_SCHEMA_LIST = 10;

export interface Cost {
  depth: number;
  aliases: number;
  nodes: number;
}

/**
 * Measures an operation the way it would run: fragments expanded, each field counted once per
 * place it appears, times the list sizes above it (`first`/`last` when given, else an assumed
 * page). Stops as soon as a limit is passed, so the walk itself is bounded (fragments used many
 * times cannot make it exponential). `variables` unknown (at validation time): a variable
 * page size counts as the assumed page; the execute step measures again with the values.
 */
export function measureOperation(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: Record<string, FragmentDefinitionNode>,
  limits: CostLimits,
  variables?: Record<string, unknown>,
): Cost {
  const cost: Cost = { depth: 0, aliases: 0, nodes: 0 };
  const root = operation.operation === "mutation" ? schema.getMutationType() : operation.operation === "subscription" ? schema.getSubscriptionType() : schema.getQueryType();
  const over = () => cost.depth > limits.maxDepth || cost.aliases > limits.maxAliases || cost.nodes > limits.maxNodes;

  const pageSize = (field: FieldNode): number | undefined => {
    for (const arg of field.arguments ?? []) {
      if (arg.name.value !== "first" && arg.name.value !== "last") continue;
      if (arg.value.kind === Kind.VARIABLE && !variables) return undefined;
      const v = valueFromASTUntyped(arg.value, variables);
      if (typeof v === "number" && Number.isFinite(v)) return Math.max(0, v);
    }
    return undefined;
  };

  const walk = (set: SelectionSetNode, parent: GraphQLNamedType | null | undefined, depth: number, factor: number, schemaTree: boolean, spreads: string[]) => {
    for (const sel of set.selections) {
      if (over()) return;
      if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const name = sel.name.value;
        const frag = fragments[name];
        if (!frag || spreads.includes(name)) continue; // unknown or cyclic: other rules report it
        walk(frag.selectionSet, schema.getType(frag.typeCondition.name.value) ?? parent, depth, factor, schemaTree, [...spreads, name]);
        continue;
      }
      if (sel.kind === Kind.INLINE_FRAGMENT) {
        walk(sel.selectionSet, sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent, depth, factor, schemaTree, spreads);
        continue;
      }
      const name = sel.name.value;
      if (name === "__typename") continue;
      const inSchema = schemaTree || name === "__schema" || name === "__type";
      if (sel.alias) cost.aliases++;
      const def = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[name] : undefined;
      const type = def ? getNullableType(def.type) : undefined;
      const named = def ? getNamedType(def.type) : undefined;
      // Connections page once (the connection field); its `nodes`/`edges` lists are that page.
      const inConnection = !!parent && parent.name.endsWith("Connection");
      const listy = !!type && (isListType(type) || named!.name.endsWith("Connection")) && !inConnection;
      const size = listy ? (pageSize(sel) ?? (inSchema ? ASSUMED_SCHEMA_LIST : ASSUMED_PAGE)) : 1;
      cost.nodes += factor;
      const level = inSchema ? depth : depth + 1;
      cost.depth = Math.max(cost.depth, level);
      if (sel.selectionSet) walk(sel.selectionSet, named, level, factor * Math.max(size, 1), inSchema, spreads);
    }
  };
  walk(operation.selectionSet, root, 0, 1, false, []);
  return cost;
}

/** The SX413 error for a measured cost over `limits`, or undefined when it fits. */
export function costError(cost: Cost, limits: CostLimits, nodes?: readonly OperationDefinitionNode[]): GraphQLError | undefined {
  const what =
    cost.depth > limits.maxDepth ? `nesting deeper than ${limits.maxDepth} levels`
    : cost.aliases > limits.maxAliases ? `more than ${limits.maxAliases} aliased fields`
    : cost.nodes > limits.maxNodes ? `an estimated ${cost.nodes > 1e9 ? "billions of" : `over ${limits.maxNodes}`} values`
    : undefined;
  if (!what) return undefined;
  return new GraphQLError(`query is too costly: ${what}`, {
    nodes,
    extensions: {
      code: "SX413",
      detail: `Limits: depth ${limits.maxDepth}, aliases ${limits.maxAliases}, estimated values ${limits.maxNodes} (a list without first/last counts as ${ASSUMED_PAGE}).`,
      hint: "Ask for fewer levels or fields, or pass first: to page through lists.",
    },
  });
}

/** A validation rule refusing operations over `limits` before anything runs. */
export function costLimitRule(limits: CostLimits) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments: Record<string, FragmentDefinitionNode> = {};
    for (const def of context.getDocument().definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments[def.name.value] = def;
    return {
      OperationDefinition(node) {
        const error = costError(measureOperation(context.getSchema(), node, fragments, limits), limits, [node]);
        if (error) context.reportError(error);
        return false; // the rule measured the whole operation itself
      },
    };
  };
}
