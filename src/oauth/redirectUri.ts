/** Hosts where an `http:` redirect never leaves the person's machine (RFC 8252 7.3). */
const LOOPBACK = new Set(["127.0.0.1", "[::1]", "localhost"]);
/** RFC 8252 7.1: a private-use scheme is a reverse domain name the app controls (com.example.app). */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/;
const MAX_LENGTH = 2000;

/**
 * Why `raw` may not be a registered redirect URI, or undefined when it may. Allowed: `https:`
 * with a host, `http:` on a loopback host (127.0.0.1, [::1], localhost), and private-use schemes
 * in reverse-DNS form (com.example.app:/callback). Refused: everything else (`http:` elsewhere,
 * `file:`, `javascript:`, `data:`, single-word custom schemes), fragments (RFC 6749 3.1.2) and
 * user info. Parsed with the WHATWG parser, the one the consent page builds the redirect with,
 * so what is checked is what the browser is sent to. sql/oauth.sql repeats a coarser check.
 */
export function redirectUriProblem(raw: unknown): string | undefined {
  if (typeof raw !== "string" || raw.length === 0) return "a redirect URI must be a non-empty string";
  if (raw.length > MAX_LENGTH) return `a redirect URI may be at most ${MAX_LENGTH} characters`;
  if (/[\s\\]/.test(raw)) return "a redirect URI must not contain spaces or backslashes";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "a redirect URI must be an absolute URL";
  }
  // The parser lower-cases the scheme; the stored text must agree with what is checked.
  if (!raw.toLowerCase().startsWith(url.protocol)) return "a redirect URI must be an absolute URL";
  // "https:///x" parses as https://x/: the text must say what the parser read.
  if ((url.protocol === "https:" || url.protocol === "http:") && !/^https?:\/\/[^/\\?#]/i.test(raw)) {
    return "a redirect URI must be written scheme://host/path";
  }
  if (url.hash || raw.includes("#")) return "a redirect URI must not have a fragment";
  if (url.username || url.password) return "a redirect URI must not carry a user name or password";
  if (url.protocol === "https:") return url.hostname ? undefined : "an https redirect URI needs a host";
  if (url.protocol === "http:") {
    return LOOPBACK.has(url.hostname)
      ? undefined
      : "http redirect URIs are allowed only on the loopback address (127.0.0.1, [::1] or localhost); use https";
  }
  if (PRIVATE_USE_SCHEME.test(url.protocol)) return undefined;
  return `redirect URIs with the scheme ${url.protocol} are not allowed; use https, http on a loopback address, or a reverse-DNS app scheme such as com.example.app:/callback`;
}
