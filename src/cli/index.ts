// The `sextant` command line: the program (./program.ts) with the command modules this run needs.
import { buildProgram } from "./program.ts";

await (await buildProgram(process.argv)).parseAsync(process.argv);
