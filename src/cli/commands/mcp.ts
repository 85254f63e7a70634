import { Option, type Command } from "commander";
import { exitWithError } from "../context.ts";
import { runStdio } from "../mcpStdio.ts";
import { LEVELS } from "../options.ts";

/** `sextant mcp`: MCP over stdio as one tenant. */
export default function register(program: Command): void {
  program
    .command("mcp")
    .description("serve MCP over stdio (for Claude Desktop and the MCP Inspector) as one tenant")
    .requiredOption("--tenant <slug>", "tenant to act as")
    .addOption(new Option("--role <level>", "access level").choices(LEVELS).default("viewer"))
    .action((opts: { tenant: string; role: string }) => runStdio(opts.tenant, opts.role).catch(exitWithError));
}
