import type { McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import type { ToolGroup } from "./toolSpec.ts";

const user = (text: string) => ({ messages: [{ role: "user" as const, content: { type: "text" as const, text } }] });

/**
 * Prompts for the two things people ask first. They only say which tools to use in which order;
 * the arguments are the user's own words, quoted as JSON strings so they read as values.
 */
export function registerPrompts(server: McpServer, groups: readonly ToolGroup[]): void {
  if (groups.includes("catalog")) {
    server.registerPrompt(
      "explore_database",
      {
        title: "Explore this database",
        description: "Survey what you can read: schemas, main tables, how they join, and what the team knows.",
        argsSchema: z.object({ focus: z.string().max(200).optional().describe("A subject to focus on, e.g. orders") }),
      },
      ({ focus }) =>
        user(
          "Explore the database I can read through Sextant. Call whoami, then list_schemas, then get_metadata for the " +
            "schemas that matter; describe_table the central tables and note how they join. " +
            (groups.includes("knowledge") ? "Check get_knowledge for caveats the team recorded. " : "") +
            (focus ? `Focus on ${JSON.stringify(focus)}. ` : "") +
            "Finish with a short map: schemas, key tables, join paths, and three questions the data can answer.",
        ),
    );
  }
  if (groups.includes("dbt")) {
    server.registerPrompt(
      "explain_model",
      {
        title: "Explain this dbt model",
        description: "What a dbt model computes, from what, its tests and who uses it.",
        argsSchema: z.object({ model: z.string().max(300).describe("Model name or unique_id") }),
      },
      ({ model }) =>
        user(
          `Explain the dbt model ${JSON.stringify(model)}. Call get_model_details for it (lineage_depth 2), read its SQL, ` +
            "and say in plain words: what one row means, where the data comes from, how it is transformed, which tests " +
            "guard it, which models and exposures depend on it, and anything stale or undocumented.",
        ),
    );
  }
}
