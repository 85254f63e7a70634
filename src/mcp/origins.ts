import type { Config } from "../config.ts";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * Browser origins allowed to call Sextant: the configured ones (SEXTANT_CORS_ORIGINS), Sextant's
 * own (its public URL), and loopback pages (a local MCP Inspector, a local app). Credentials are
 * Bearer headers, never cookies, so an allowed origin still needs a token of its own.
 */
export function originAllowed(origin: string, config: Pick<Config, "allowedOrigins" | "publicUrl">): boolean {
  if (config.allowedOrigins.includes(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.origin !== origin) return false; // a path, credentials or odd spelling: not an Origin header
  if (url.origin === new URL(config.publicUrl).origin) return true;
  return (url.protocol === "http:" || url.protocol === "https:") && LOOPBACK.has(url.hostname);
}
