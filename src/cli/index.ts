// The `sextant` command line. Each command is a module in ./commands/ that registers itself on
// the program; add a command by writing its module and one line in COMMANDS (the order is the
// order `sextant --help` lists them in).
import { Command } from "commander";

/** A command module's default export: adds its command (and subcommands) to the program. */
export type RegisterCommand = (program: Command) => void;

const COMMANDS: Promise<{ default: RegisterCommand }>[] = [
  import("./commands/serve.ts"),
  import("./commands/mcp.ts"),
  import("./commands/migrate.ts"),
  import("./commands/demo.ts"),
  import("./commands/tenant.ts"),
  import("./commands/token.ts"),
  import("./commands/dbt.ts"),
  import("./commands/analyst.ts"),
  import("./commands/worker.ts"),
  import("./commands/user.ts"),
  import("./commands/oauth.ts"),
  import("./commands/schema.ts"),
  import("./commands/pipeline.ts"),
  import("./commands/source.ts"),
  import("./commands/dbUrl.ts"),
  import("./commands/psql.ts"),
  import("./commands/uninstall.ts"),
  import("./commands/slack.ts"),
];

const program = new Command()
  .name("sextant")
  .description(
    "Postgres-native data explorer: read-only SQL, schemas and dbt docs for AI agents (MCP), apps (GraphQL) and analysts (psql).\n" +
      "Uses DATABASE_URL when set, otherwise the embedded PostgreSQL under SEXTANT_DATA_DIR (default .sextant).",
  )
  .showHelpAfterError();

for (const command of await Promise.all(COMMANDS)) command.default(program);

await program.parseAsync(process.argv);
