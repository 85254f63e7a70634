import { execFile } from "node:child_process";
import path from "node:path";

export const SEXTANT_BIN = path.resolve("bin/sextant.mjs");

/** Runs the real `sextant` CLI with `env` added; resolves with exit code, stdout and stderr. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SEXTANT_BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
