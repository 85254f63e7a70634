import { SextantError } from "../db/errors.ts";
import { TOOL_GROUPS, type ToolGroup } from "./toolSpec.ts";

/** The header (or `?groups=` on the /mcp URL, for clients that take only a URL) naming the tool groups wanted. */
export const GROUPS_HEADER = "sextant-tool-groups";

/**
 * Parses "catalog,query": known group names only (SX400 otherwise), no more than the groups
 * there are; absent or empty means all groups.
 */
export function parseToolGroups(value: unknown): readonly ToolGroup[] {
  if (value === undefined || value === null || value === "") return TOOL_GROUPS;
  if (typeof value !== "string" || value.length > 200) {
    throw new SextantError("SX400", "tool groups must be one comma-separated list of up to 200 characters");
  }
  const names = [...new Set(value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean))];
  const unknown = names.filter((n) => !(TOOL_GROUPS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new SextantError("SX400", `unknown tool group ${JSON.stringify(unknown[0]!.slice(0, 40))}`, `Known groups: ${TOOL_GROUPS.join(", ")}.`);
  }
  return names.length ? (names as ToolGroup[]) : TOOL_GROUPS;
}

/**
 * The groups a request gets: those asked for, within those its credential is for (an API token
 * may carry tool groups). A header narrows a token, never widens it; asking only for groups the
 * token is not for is refused (SX403) rather than answered with an empty tool list.
 */
export function boundToolGroups(requested: readonly ToolGroup[], allowed: readonly string[] | undefined): readonly ToolGroup[] {
  if (!allowed) return requested;
  const groups = requested.filter((g) => allowed.includes(g));
  if (groups.length === 0) {
    throw new SextantError("SX403", `this token is for the tool groups ${allowed.join(", ")} only`, "Ask for those groups, or use a token made for the others.");
  }
  return groups;
}
