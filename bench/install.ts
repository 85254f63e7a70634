/**
 * Installs Sextant into the bench's database the way a user would: the `sextant` command with
 * DATABASE_URL (migrate, tenant create, tenant update, token create). The tenant `bench` gets
 * Pagila's schema and the catalog's schemas. Where this Sextant refuses to map `public`, the
 * Pagila is loaded again into a schema `pagila` (and the ops name that schema).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { loadPagila } from "./fixtures.ts";

const here = path.dirname(new URL(import.meta.url).pathname);
export const sextantBin = path.resolve(here, "../bin/sextant.mjs");

/** Runs `sextant <args>` with DATABASE_URL; resolves with stdout, rejects with stderr. */
export function sextant(url: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [sextantBin, ...args], {
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: "warn", SEXTANT_DEMO: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += String(d)));
    child.stderr.on("data", (d) => (err += String(d)));
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`sextant ${args.join(" ")}: ${err.trim() || out.trim()}`))));
  });
}

export interface Installed {
  token: string;
  pagilaSchema: string;
  tenantRole: string;
}

export async function installSextant(url: string, catalogSchemas: string[], log: (s: string) => void): Promise<Installed> {
  let t = performance.now();
  await sextant(url, ["migrate"]);
  log(`sextant migrate: ${Math.round(performance.now() - t)} ms`);
  let pagilaSchema = "public";
  const create = (schema: string) =>
    sextant(url, ["tenant", "create", "bench", ...[schema, ...catalogSchemas].flatMap((s) => ["--schema", s])]);
  try {
    await create("public");
  } catch (e) {
    log(`tenant create --schema public refused (${(e as Error).message.split(":").at(-1)!.trim()}); Pagila is loaded again into schema pagila`);
    await loadPagila(url, "pagila");
    pagilaSchema = "pagila";
    await create("pagila");
  }
  await sextant(url, ["tenant", "update", "bench", "--max-rows", "1000", "--rate-per-minute", "100000000",
    "--rate-per-hour", "1000000000", "--rate-per-day", "1000000000"]);
  const token = (await sextant(url, ["token", "create", "--tenant", "bench", "--name", "bench-agent", "--role", "analyst"])).trim();
  return { token, pagilaSchema, tenantRole: "sextant_t_bench__analyst" };
}
