import { InvalidTokenError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js";
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js";
import type { RequestHandler } from "express";
import type { Authenticate } from "./authenticate.ts";
import type { Principal } from "./principal.ts";

/** Credentials without an expiry are re-checked on every request; the SDK needs a number. */
const NO_EXPIRY_WINDOW_S = 3600;

/** Adapts Sextant's authenticator to the MCP SDK's verifier (401 + WWW-Authenticate on failure). */
export function tokenVerifier(authenticate: Authenticate): OAuthTokenVerifier {
  return {
    async verifyAccessToken(token) {
      let principal: Principal;
      try {
        principal = await authenticate(token);
      } catch (error) {
        if ((error as { code?: string }).code === "SX401") throw new InvalidTokenError((error as Error).message);
        throw error;
      }
      return {
        token: "", // never keep the credential on the request: nothing can log it by accident
        clientId: principal.subject,
        scopes: [principal.accessLevel],
        expiresAt: principal.expiresAt ?? Math.floor(Date.now() / 1000) + NO_EXPIRY_WINDOW_S,
        extra: { principal },
      };
    },
  };
}

/** Express middleware: a valid Bearer credential or 401; sets req.auth.extra.principal. */
export function bearerAuth(authenticate: Authenticate): RequestHandler {
  return requireBearerAuth({ verifier: tokenVerifier(authenticate) });
}

/** The principal `bearerAuth` put on a request or MCP call. */
export function principalFromAuth(auth: { extra?: Record<string, unknown> } | undefined): Principal {
  const principal = auth?.extra?.principal as Principal | undefined;
  if (!principal) throw new Error("no authenticated principal on this request");
  return principal;
}
