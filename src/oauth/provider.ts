import { createHash, randomBytes } from "node:crypto";
import type { OAuthRegisteredClientsStore } from "@modelcontextprotocol/sdk/server/auth/clients.js";
import {
  CustomOAuthError, InvalidClientError, InvalidClientMetadataError, InvalidGrantError, InvalidTargetError, InvalidTokenError, ServerError, TooManyRequestsError,
} from "@modelcontextprotocol/sdk/server/auth/errors.js";
import type { AuthorizationParams, OAuthServerProvider } from "@modelcontextprotocol/sdk/server/auth/provider.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import type { OAuthClientInformationFull, OAuthTokenRevocationRequest, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import type { Response } from "express";
import type pg from "pg";
import { fetchMetadataDocument, isMetadataDocumentId, MetadataDocumentCache, MetadataDocumentError } from "./clientMetadataDocument.ts";
import { baseFor, canonicalUrl } from "./hostAliases.ts";
import type { KeyRing } from "./keys.ts";
import { loginPage } from "./pages.ts";
import { redirectUriProblem } from "./redirectUri.ts";

export const sha256 = (s: string) => createHash("sha256").update(s).digest("base64url");
export const randomToken = () => randomBytes(32).toString("base64url");

export interface OAuthSettings {
  issuer: string;
  /** Resources tokens may be issued for (RFC 8707); the first is the default (/mcp). */
  resources: string[];
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  /** host:port that client metadata documents may be fetched from over http or on private addresses (SEXTANT_SOURCE_ALLOW_HOSTS). */
  allowHosts?: string[];
}

/** What a signed authorization request carries from /authorize to the login and consent forms. */
export interface AuthorizationRequest {
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  state?: string;
  scopes: string[];
  resource: string;
  /** The issuer the client discovered: the public URL or the loopback alias it used (hostAliases.ts). */
  iss?: string;
}

export const TICKET_LOGIN = "sx-login+jwt";
export const TICKET_CONSENT = "sx-consent+jwt";
export const ACCESS_TOKEN = "at+jwt";
const TICKET_TTL = 600;

/** "https://x/mcp/" and "https://x/mcp" are one resource. */
export function normalizeResource(url: string | URL): string {
  return String(url).replace(/\/+$/, "");
}

export function clientView(client: OAuthClientInformationFull, redirectUri: string) {
  let host: string;
  try {
    const u = new URL(redirectUri);
    host = u.host || u.protocol;
  } catch {
    host = redirectUri;
  }
  return { name: client.client_name || `an unnamed app (${client.client_id.slice(0, 8)})`, redirectHost: host };
}

/** Maps a refusal raised by sql/oauth.sql (hint = the OAuth error) to the SDK's error. */
function oauthError(error: unknown): Error {
  const e = error as { code?: string; hint?: string; message?: string };
  if (e.code === "SX400" && e.hint === "invalid_target") return new InvalidTargetError(e.message ?? "invalid target");
  if (e.code === "SX400" || e.code === "SX403") return new InvalidGrantError(e.message ?? "invalid grant");
  return error instanceof Error ? error : new ServerError("server error");
}

/** Maps a refusal of sextant_private.oauth_register_client to RFC 7591's errors. */
function registrationError(error: unknown): Error {
  const e = error as { code?: string; hint?: string; message?: string };
  if (e.hint === "invalid_redirect_uri") return new CustomOAuthError("invalid_redirect_uri", e.message ?? "invalid redirect URI");
  if (e.code === "SX400" || e.code === "SX413") return new InvalidClientMetadataError(e.message ?? "invalid client metadata");
  if (e.code === "SX429") return new TooManyRequestsError(e.message ?? "too many registered clients");
  return error instanceof Error ? error : new ServerError("server error");
}

/**
 * Sextant as an OAuth 2.1 authorization server, for the MCP SDK's handlers (discovery,
 * registration, authorize, token, revoke). State lives in PostgreSQL (sql/oauth.sql); the
 * person signs in on Sextant's own pages (routes.ts), which this provider starts.
 */
export class SextantOAuthProvider implements OAuthServerProvider {
  constructor(
    private readonly pool: pg.Pool,
    private readonly keys: KeyRing,
    private readonly settings: OAuthSettings,
    private readonly verifyAccess: (token: string) => Promise<AuthInfo>,
    private readonly upstreamName?: string,
    private readonly onRevoke: () => void = () => {},
  ) {}

  private readonly documents = new MetadataDocumentCache();

  get clientsStore(): OAuthRegisteredClientsStore {
    const pool = this.pool;
    const documents = this.documents;
    const allowHosts = this.settings.allowHosts ?? [];
    return {
      async getClient(clientId: string) {
        // Client ID Metadata Documents: the client_id is its document's URL; fetched (bounded,
        // address-checked), checked, and kept as a client row for its codes and grants.
        if (isMetadataDocumentId(clientId)) {
          return documents.get(clientId, async () => {
            let client: OAuthClientInformationFull;
            try {
              client = await fetchMetadataDocument(clientId, allowHosts);
              await pool.query("select sextant_private.oauth_metadata_document_client($1, $2)", [clientId, JSON.stringify(client)]);
            } catch (error) {
              const message = error instanceof MetadataDocumentError ? error.message : (error as { code?: string }).code === "SX400" ? (error as Error).message : undefined;
              if (message) throw new InvalidClientError(message);
              throw error;
            }
            return client;
          });
        }
        const { rows } = await pool.query("select * from sextant_private.oauth_get_client($1)", [clientId]);
        if (!rows[0]) return undefined;
        // The secret is checked against its hash before the SDK sees the request (routes.ts);
        // the SDK gets the client without it. Redirect URIs registered before they were
        // checked, and failing the check now, are left out: the SDK then refuses them with a
        // 400 instead of redirecting there.
        const metadata = rows[0].metadata as OAuthClientInformationFull;
        const redirects = Array.isArray(metadata.redirect_uris) ? metadata.redirect_uris : [];
        return { ...metadata, redirect_uris: redirects.filter((u) => !redirectUriProblem(u)), client_id: clientId } as OAuthClientInformationFull;
      },
      async registerClient(client: Omit<OAuthClientInformationFull, "client_id" | "client_id_issued_at">) {
        const full = client as OAuthClientInformationFull;
        for (const uri of full.redirect_uris ?? []) {
          const problem = redirectUriProblem(uri);
          if (problem) throw new CustomOAuthError("invalid_redirect_uri", problem);
        }
        const { client_secret, ...metadata } = full;
        try {
          await pool.query("select sextant_private.oauth_register_client($1, $2, $3)", [
            full.client_id, client_secret ? sha256(client_secret) : null, JSON.stringify(metadata),
          ]);
        } catch (error) {
          throw registrationError(error);
        }
        return full;
      },
    };
  }

  /** Checks the resource (RFC 8707) and shows the sign-in page. */
  async authorize(client: OAuthClientInformationFull, params: AuthorizationParams, res: Response): Promise<void> {
    const resource = params.resource ? normalizeResource(canonicalUrl(String(params.resource), this.settings.issuer)) : this.settings.resources[0]!;
    if (!this.settings.resources.includes(resource)) {
      throw new InvalidTargetError(`this server issues tokens for ${this.settings.resources.join(" and ")} only`);
    }
    const request: AuthorizationRequest = {
      client_id: client.client_id,
      redirect_uri: params.redirectUri,
      code_challenge: params.codeChallenge,
      state: params.state,
      scopes: params.scopes ?? [],
      resource,
      iss: baseFor(res.req.headers.host, this.settings.issuer),
    };
    const ticket = await this.keys.sign({ req: request }, {
      typ: TICKET_LOGIN, issuer: this.settings.issuer, audience: `${this.settings.issuer}/oauth/login`, subject: client.client_id, ttlSeconds: TICKET_TTL,
    });
    const csrf = randomToken();
    res.cookie("sx_csrf", csrf, { httpOnly: true, sameSite: "strict", secure: this.settings.issuer.startsWith("https:"), path: "/oauth", maxAge: TICKET_TTL * 1000 });
    sendPage(res, 200, loginPage({ client: clientView(client, params.redirectUri), ticket, csrf, upstream: this.upstreamName }), params.redirectUri);
  }

  async challengeForAuthorizationCode(client: OAuthClientInformationFull, code: string): Promise<string> {
    const { rows } = await this.pool.query("select sextant_private.oauth_code_challenge($1, $2) as c", [sha256(code), client.client_id]);
    if (!rows[0].c) throw new InvalidGrantError("the authorization code is unknown");
    return rows[0].c;
  }

  async exchangeAuthorizationCode(client: OAuthClientInformationFull, code: string, _verifier?: string, redirectUri?: string, resource?: URL): Promise<OAuthTokens> {
    const refresh = randomToken();
    const grant = await this.exchange("select sextant_private.oauth_exchange_code($1, $2, $3, $4, $5, $6) as g", [
      sha256(code), client.client_id, redirectUri ?? null, resource ? normalizeResource(canonicalUrl(String(resource), this.settings.issuer)) : null, sha256(refresh), this.settings.refreshTtlSeconds,
    ]);
    return this.tokens(grant, client, refresh);
  }

  async exchangeRefreshToken(client: OAuthClientInformationFull, refreshToken: string, _scopes?: string[], resource?: URL): Promise<OAuthTokens> {
    const refresh = randomToken();
    // The resource is checked in SQL with everything else, before the token rotates: a refusal
    // must leave the client's refresh token usable.
    const grant = await this.exchange("select sextant_private.oauth_refresh($1, $2, $3, $4, $5) as g", [
      sha256(refreshToken), client.client_id, resource ? normalizeResource(canonicalUrl(String(resource), this.settings.issuer)) : null, sha256(refresh), this.settings.refreshTtlSeconds,
    ]);
    return this.tokens(grant, client, refresh);
  }

  /** Runs a code or refresh-token exchange in SQL; its refusals become OAuth errors. */
  private async exchange(sql: string, params: unknown[]): Promise<Grant> {
    let grant: Grant;
    try {
      grant = (await this.pool.query(sql, params)).rows[0].g;
    } catch (error) {
      throw oauthError(error);
    }
    if (grant.error) {
      this.onRevoke(); // the database revoked the grant (replayed code or refresh token)
      throw new InvalidGrantError(grant.message ?? "invalid grant");
    }
    return grant;
  }

  private async tokens(grant: Grant, client: OAuthClientInformationFull, refresh: string): Promise<OAuthTokens> {
    const access = await this.keys.sign(
      { tenant: grant.tenant, access_level: grant.access_level, sid: String(grant.grant_id), client_id: client.client_id, scope: grant.access_level },
      { typ: ACCESS_TOKEN, issuer: this.settings.issuer, audience: grant.resource, subject: grant.principal, ttlSeconds: this.settings.accessTtlSeconds },
    );
    return { access_token: access, token_type: "Bearer", expires_in: this.settings.accessTtlSeconds, refresh_token: refresh, scope: grant.access_level };
  }

  verifyAccessToken(token: string): Promise<AuthInfo> {
    return this.verifyAccess(token);
  }

  /** RFC 7009: a refresh token or an access token; either way its grant ends. Unknown tokens are ignored. */
  async revokeToken(client: OAuthClientInformationFull, request: OAuthTokenRevocationRequest): Promise<void> {
    let grantId: string | null = null;
    if (request.token.split(".").length === 3) {
      try {
        const claims = await this.keys.verify(request.token, { issuer: this.settings.issuer, typ: ACCESS_TOKEN });
        grantId = String(claims.sid);
      } catch {
        // Not one of ours (or expired): nothing to revoke, as RFC 7009 allows.
      }
    }
    await this.pool.query("select sextant_private.oauth_revoke($1, $2, $3)", [sha256(request.token), grantId, client.client_id]);
    this.onRevoke();
  }
}

interface Grant {
  /** Set (with message) when the database refused the exchange but had to commit a revocation. */
  error?: string;
  message?: string;
  grant_id: number;
  tenant: string;
  access_level: string;
  principal: string;
  scopes: string[];
  resource: string;
  /** The issuer the client discovered: the public URL or the loopback alias it used (hostAliases.ts). */
  iss?: string;
}

/** HTML with the headers every sign-in page needs: no framing, no scripts, forms only to us (and the app, for the last redirect). */
export function sendPage(res: Response, status: number, html: string, redirectUri?: string): void {
  let formAction = "'self'";
  if (redirectUri) {
    try {
      const u = new URL(redirectUri);
      formAction += u.protocol === "http:" || u.protocol === "https:" ? ` ${u.origin}` : ` ${u.protocol}`;
    } catch {
      // the SDK has validated it; keep 'self' only
    }
  }
  res.status(status);
  res.setHeader("Content-Type", "text/html; charset=utf-8");
  res.setHeader("Content-Security-Policy", `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`);
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.send(html);
}

export { InvalidTokenError };
