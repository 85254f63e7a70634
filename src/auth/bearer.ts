import { InvalidTokenError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js";
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js";
import type { RequestHandler } from "express";
import type { Authenticate } from "./authenticate.ts";
import type { Principal } from "./principal.ts";

/** Credentials without an expiry are re-checked on every request; the SDK needs a number. */
const NO_EXPIRY_WINDOW_S = 3600;

/** Adapts Sextant's authenticator to the MCP SDK's verifier (401 + WWW-Authenticate on failure). */
export function tokenVerifier(authenticate: Authenticate, resource?: string): OAuthTokenVerifier {
  return {
    async verifyAccessToken(token) {
      let principal: Principal;
      try {
        principal = await authenticate(token);
      } catch (error) {
        if ((error as { code?: string }).code === "SX401") throw new InvalidTokenError((error as Error).message);
        throw error;
      }
      // RFC 8707: an OAuth token works only at the resource it was issued for.
      if (resource && principal.audience && !principal.audience.includes(resource)) {
        throw new InvalidTokenError(`this token was issued for ${principal.audience.join(", ")}, not ${resource}`);
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

/**
 * Express middleware: a valid Bearer credential for `resource` or 401 with WWW-Authenticate
 * (pointing at the protected-resource metadata, for OAuth discovery); sets req.auth.extra.principal.
 */
export function bearerAuth(authenticate: Authenticate, resource?: { url: string; metadataUrl: string }): RequestHandler {
  return requireBearerAuth({ verifier: tokenVerifier(authenticate, resource?.url), resourceMetadataUrl: resource?.metadataUrl });
}

/** The principal `bearerAuth` put on a request or MCP call. */
export function principalFromAuth(auth: { extra?: Record<string, unknown> } | undefined): Principal {
  const principal = auth?.extra?.principal as Principal | undefined;
  if (!principal) throw new Error("no authenticated principal on this request");
  return principal;
}
