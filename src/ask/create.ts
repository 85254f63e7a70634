import type pg from "pg";
import type { OperationGate } from "../audit/operation.ts";
import type { Embedder } from "../dbt/embeddings.ts";
import { createLlm } from "./llm/index.ts";
import type { AskService } from "./service.ts";
import type { AskSettings } from "./settings.ts";

/** What the ask and Slack doors need from the server: the same pool, gate and embedder as MCP. */
export interface AskDeps {
  pool: pg.Pool;
  gate: OperationGate;
  embedder?: Embedder;
  logError: (id: string, error: unknown) => void;
  settings: AskSettings;
}

/** The answering service: the configured model (if any) and the MCP tool path as the only way to data. */
export function createAskService(d: AskDeps): AskService {
  return {
    llm: createLlm(d.settings.llm),
    budgets: d.settings.budgets,
    pool: d.pool,
    gate: d.gate,
    logError: d.logError,
    toolDeps: {
      pool: d.pool, gate: d.gate, embedder: d.embedder, logError: d.logError,
      principalOf: () => {
        throw new Error("the ask loop passes its principal to callTool itself");
      },
    },
  };
}
