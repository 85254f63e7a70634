import { timingSafeEqual } from "node:crypto";

/**
 * The value of cookie `name` in a request's Cookie header (the first one of that name),
 * percent-decoded as Express's res.cookie encodes it; a value that does not decode is taken as
 * sent (a malformed cookie is only a value that matches nothing). The console's session and
 * memo cookies and OAuth's CSRF and memo cookies are read here.
 */
export function readCookie(req: { headers: { cookie?: string } }, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at < 0 || part.slice(0, at).trim() !== name) continue;
    const value = part.slice(at + 1).trim();
    try {
      return value.includes("%") ? decodeURIComponent(value) : value;
    } catch {
      return value;
    }
  }
  return undefined;
}

/**
 * Whether what a request sent (`given`: a header, a form field, anything) is the secret
 * `expected`, in constant time for a given length. Bytes are compared, not characters: a
 * non-ASCII character of the right length is a mismatch, never an error.
 */
export function sameSecret(expected: string | undefined, given: unknown): boolean {
  if (!expected || typeof given !== "string") return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
