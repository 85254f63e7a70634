import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (where migrations/, sql/ and .gmrc live), wherever the CLI is run from. */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
