const LOOPBACK = ["localhost", "127.0.0.1", "[::1]"];

/**
 * The origins that are the same Sextant as the public URL: itself, and when it is a loopback
 * URL (the default, http://localhost:PORT) the other loopback names at the same port. A client
 * given http://127.0.0.1:PORT/mcp then sees that URL in the metadata it checks (mcp-remote
 * refuses a resource that is not the URL it was given). Behind a proxy, SEXTANT_PUBLIC_URL is
 * the only name (Host headers there are the proxy's business, and never trusted).
 */
export function originAliases(publicUrl: string): string[] {
  const url = new URL(publicUrl);
  if (url.protocol !== "http:" || !LOOPBACK.includes(url.hostname)) return [url.origin];
  const port = url.port ? `:${url.port}` : "";
  return [url.origin, ...LOOPBACK.map((h) => `http://${h}${port}`).filter((o) => o !== url.origin)];
}

/** The base URL to advertise to a request: the alias its Host header names, else the public URL. */
export function baseFor(host: string | undefined, publicUrl: string): string {
  const asked = host ? `http://${host.toLowerCase()}` : "";
  const aliases = originAliases(publicUrl);
  return aliases.includes(asked) && asked !== aliases[0] ? asked : publicUrl.replace(/\/$/, "");
}

/** A URL on any alias, rewritten onto the public URL (tokens are issued for that one resource). */
export function canonicalUrl(url: string, publicUrl: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (!originAliases(publicUrl).includes(parsed.origin)) return url;
  return new URL(parsed.pathname + parsed.search, new URL(publicUrl).origin).href;
}
