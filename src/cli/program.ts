// The `sextant` command line's program (index.ts runs it). Each command is a module in
// ./commands/ that registers itself on the program; add a command by writing its module and one
// entry in COMMANDS (the order is the order `sextant --help` lists them in).
import { Command } from "commander";

/** A command module's default export: adds its command (and subcommands) to the program. */
export type RegisterCommand = (program: Command) => void;

type CommandModule = () => Promise<{ default: RegisterCommand }>;

/**
 * Each module under the name(s) of the command(s) it registers (test/cliCommands.test.ts checks
 * the names). A run loads only the module of the command it names — a module loads its command's
 * dependencies, and `sextant serve` should not pay for the dbt loader's or psql's — and all of
 * them for `--help`, `help` or an unknown name (commander then lists or suggests them).
 */
export const COMMANDS: [names: string[], load: CommandModule][] = [
  [["serve"], () => import("./commands/serve.ts")],
  [["mcp"], () => import("./commands/mcp.ts")],
  [["migrate"], () => import("./commands/migrate.ts")],
  [["demo", "demo-api"], () => import("./commands/demo.ts")],
  [["tenant"], () => import("./commands/tenant.ts")],
  [["token"], () => import("./commands/token.ts")],
  [["dbt"], () => import("./commands/dbt.ts")],
  [["analyst"], () => import("./commands/analyst.ts")],
  [["worker"], () => import("./commands/worker.ts")],
  [["user"], () => import("./commands/user.ts")],
  [["oauth"], () => import("./commands/oauth.ts")],
  [["schema"], () => import("./commands/schema.ts")],
  [["pipeline"], () => import("./commands/pipeline.ts")],
  [["source"], () => import("./commands/source.ts")],
  [["db-url"], () => import("./commands/dbUrl.ts")],
  [["psql"], () => import("./commands/psql.ts")],
  [["uninstall"], () => import("./commands/uninstall.ts")],
  [["slack"], () => import("./commands/slack.ts")],
];

/** The program with the modules `argv` needs (argv as process.argv: node, script, arguments). */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command()
    .name("sextant")
    .description(
      "Postgres-native data explorer: read-only SQL, schemas and dbt docs for AI agents (MCP), apps (GraphQL) and analysts (psql).\n" +
        "Uses DATABASE_URL when set, otherwise the embedded PostgreSQL under SEXTANT_DATA_DIR (default .sextant).",
    )
    .showHelpAfterError();
  const named = COMMANDS.find(([names]) => names.includes(argv[2] ?? ""));
  const modules = await Promise.all((named ? [named] : COMMANDS).map(([, load]) => load()));
  for (const module of modules) module.default(program);
  return program;
}
