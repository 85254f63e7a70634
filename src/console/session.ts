import { createHash, randomBytes } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type pg from "pg";
import { readCookie } from "../http/cookies.ts";

/** A live console session, as sextant_private.console_session_get returns it. */
export interface ConsoleSession {
  idHash: Buffer;
  userId: number;
  email: string;
  displayName: string | null;
  /** The picked tenant, or null before the person picked one. */
  tenant: string | null;
  /** The person's level in that tenant now (null: they no longer belong to it). */
  accessLevel: "viewer" | "analyst" | "admin" | null;
  csrf: string;
  tenants: { tenant: string; name: string; access_level: string }[];
  expiresAt: string;
}

export interface SessionSettings {
  /** Cookie name; `Secure` is added when the public URL is HTTPS. */
  cookie: string;
  secure: boolean;
  idleSeconds: number;
  maxSeconds: number;
}

export const sha256 = (s: string) => createHash("sha256").update(s).digest();
export const newSecret = () => randomBytes(32).toString("base64url");

// Read and compared in one place for the console and OAuth (src/http/cookies.ts).
export { readCookie, sameSecret } from "../http/cookies.ts";

/** Sets the session cookie: HttpOnly, SameSite=Strict, path /console, Secure on HTTPS; no Max-Age (a browser session) — the server's timeouts decide. */
export function setSessionCookie(res: Response, s: SessionSettings, value: string): void {
  res.cookie(s.cookie, value, { httpOnly: true, sameSite: "strict", secure: s.secure, path: "/console" });
}

export function clearSessionCookie(res: Response, s: SessionSettings): void {
  res.clearCookie(s.cookie, { httpOnly: true, sameSite: "strict", secure: s.secure, path: "/console" });
}

/** The session behind the request's cookie, alive (timeouts checked in SQL), or undefined. */
export async function loadSession(pool: pg.Pool, s: SessionSettings, req: Request): Promise<ConsoleSession | undefined> {
  const value = readCookie(req, s.cookie);
  if (!value || value.length > 100) return undefined;
  const idHash = sha256(value);
  const { rows } = await pool.query("select * from sextant_private.console_session_get($1, $2, $3)", [idHash, s.idleSeconds, s.maxSeconds]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    idHash, userId: Number(r.user_id), email: r.email, displayName: r.display_name, tenant: r.tenant,
    accessLevel: r.access_level, csrf: r.csrf, tenants: r.tenants, expiresAt: new Date(r.expires_at).toISOString(),
  };
}

/**
 * CSRF, twice over: the request's Origin must be the console's own (browsers always send it on
 * POST), and a signed-in request must carry the session's token in `x-csrf-token` (a header a
 * cross-site form cannot set, and a value a cross-site script cannot read).
 */
export function sameOrigin(publicOrigin: string) {
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    const host = req.headers.host;
    // The public URL's origin, or this request's own host (a server reached by another name in tests).
    const ok = origin === publicOrigin || (origin !== undefined && host !== undefined && (origin === `http://${host}` || origin === `https://${host}`));
    if (!ok) return void res.status(403).json({ code: "SX403", message: "request refused: it does not come from the console's own page" });
    next();
  };
}
