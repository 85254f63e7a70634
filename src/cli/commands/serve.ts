import type { Command } from "commander";
import { exitWithError } from "../context.ts";
import { serve } from "../serve.ts";

/** `sextant serve`: the HTTP server (runs until stopped). */
export default function register(program: Command): void {
  program
    .command("serve")
    .description("start the HTTP server (/graphql, /graphiql, /mcp, /health, /ready); loads the demo tenant on first run (embedded PostgreSQL; with DATABASE_URL only if SEXTANT_DEMO=1)")
    .action(() => serve().catch(exitWithError));
}
