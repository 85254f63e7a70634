import { execFile, spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { freePort } from "./ports.ts";

export const SEXTANT_BIN = path.resolve("bin/sextant.mjs");

/** Runs the real `sextant` CLI with `env` added; resolves with exit code, stdout and stderr. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SEXTANT_BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** A `sextant serve` child started by startServe. */
export interface ServeProcess {
  child: ChildProcess;
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/**
 * Starts the real `sextant serve` on a free port (worker off, warn logs, unless `env` says
 * otherwise) and resolves once it prints that it is ready; within `readyMs` or it is killed and
 * the error carries its stderr. The one start-until-ready loop of the tests.
 */
export async function startServe(env: Record<string, string>, { readyMs = 90_000 } = {}): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [SEXTANT_BIN, "serve"], {
    env: { ...process.env, PORT: String(port), SEXTANT_WORKER: "0", LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (err += String(d)));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + readyMs;
  while (!out.includes("Sextant is ready")) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`serve did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, url: `http://127.0.0.1:${port}`, exited, stdout: () => out, stderr: () => err, stop };
}
