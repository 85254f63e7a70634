import { defineTool, type ToolSpec } from "../toolSpec.ts";

/** Catalog area: sql/catalog.sql. */
export const catalogTools: ToolSpec[] = [
  defineTool({
    name: "whoami",
    title: "Who am I",
    description: "Your tenant, access level, database role and principal, as Sextant sees them.",
    input: {},
    sql: "select * from sextant.whoami()",
    args: () => [],
    result: "one",
  }),
  defineTool({
    name: "list_schemas",
    title: "List schemas",
    description: "Schemas your tenant can read, with the number of readable tables and views in each.",
    input: {},
    sql: "select * from sextant.list_schemas()",
    args: () => [],
    result: "rows",
  }),
];
