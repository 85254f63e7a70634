import { createOAuthMetadata, mcpAuthRouter } from "@modelcontextprotocol/sdk/server/auth/router.js";
import express, { type Express, type Request, type Response } from "express";
import type pg from "pg";
import type { Logger } from "pino";
import { tokenVerifier } from "../auth/bearer.ts";
import type { Authenticate } from "../auth/authenticate.ts";
import { readCookie, sameSecret } from "../http/cookies.ts";
import { boundedBody } from "../http/jsonBody.ts";
import type { KeyRing } from "./keys.ts";
import { throttleAddress } from "./clientAddress.ts";
import { baseFor } from "./hostAliases.ts";
import { consentPage, loginPage, messagePage } from "./pages.ts";
import { verifyPassword } from "./password.ts";
import { UpstreamOidc, type UpstreamConfig } from "./upstream.ts";
import {
  clientView, randomToken, sendPage, sha256, SextantOAuthProvider, TICKET_CONSENT, TICKET_LOGIN,
  type AuthorizationRequest, type OAuthSettings,
} from "./provider.ts";

/**
 * OAuth 2.1 for remote MCP clients: the MCP SDK's discovery, registration, authorize, token
 * and revocation handlers over SextantOAuthProvider, plus Sextant's own sign-in and consent
 * forms, the JWKS, and the protected-resource metadata at the root too.
 */
export function installOAuth(app: Express, deps: {
  pool: pg.Pool; keys: KeyRing; settings: OAuthSettings; authenticate: Authenticate; log: Logger; upstream?: UpstreamConfig;
  /** Called after this server revoked a grant, so its own credential cache forgets at once. */
  onRevoke?: () => void;
}) {
  const { pool, keys, settings } = deps;
  const verifier = tokenVerifier(deps.authenticate);
  const upstream = deps.upstream ? new UpstreamOidc(deps.upstream, {
    callbackUrl: `${settings.issuer}/oauth/upstream/callback`, keys,
    memo: { issuer: settings.issuer, audience: `${settings.issuer}/oauth/upstream`, typ: "sx-upstream+jwt" },
  }) : undefined;
  const provider = new SextantOAuthProvider(pool, keys, settings, (t) => verifier.verifyAccessToken(t), upstream?.config.name, deps.onRevoke);
  const form = boundedBody(express.urlencoded({ extended: false, limit: "16kb" }), "16kb");

  // Confidential clients: the secret is checked against its hash here; the SDK's handlers then
  // see a client without a secret.
  app.use(["/token", "/revoke"], form, async (req: Request, res: Response, next) => {
    try {
      const body = (req.body ?? {}) as Record<string, string>;
      const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? "");
      if (basic) {
        const [id, secret] = Buffer.from(basic[1]!, "base64").toString().split(":").map(decodeURIComponent);
        body.client_id ??= id!;
        body.client_secret ??= secret!;
      }
      if (typeof body.client_id === "string") {
        const { rows } = await pool.query("select secret_hash from sextant_private.oauth_get_client($1)", [body.client_id]);
        const hash = rows[0]?.secret_hash as string | null | undefined;
        if (hash && !sameSecret(hash, body.client_secret ? sha256(body.client_secret) : undefined)) {
          return void res.status(401).json({ error: "invalid_client", error_description: "client authentication failed" });
        }
      }
      delete body.client_secret;
      req.body = body;
      next();
    } catch (error) {
      next(error);
    }
  });

  // Registrations per client address, in PostgreSQL (shared by every server process); the SDK's
  // own limiter behind it counts per process only.
  app.post("/register", async (req: Request, res: Response, next) => {
    try {
      const address = throttleAddress(req.ip || req.socket.remoteAddress);
      const wait = (await pool.query("select sextant_private.oauth_register_attempt($1) as wait", [address])).rows[0].wait as number;
      if (wait > 0) {
        res.setHeader("Retry-After", String(wait));
        return void res.status(429).json({ error: "too_many_requests", error_description: `too many client registrations from this address; try again in ${Math.ceil(wait / 60)} minutes` });
      }
      next();
    } catch (error) {
      next(error);
    }
  });

  // Discovery answers in the name the client used (a loopback alias of a loopback public URL,
  // hostAliases.ts), so the resource and issuer it checks are the URL it was given; tokens are
  // issued for the public URL's resource all the same (provider.ts canonicalises).
  const publicOrigin = new URL(settings.issuer).origin;
  const onBase = (base: string, value: unknown): unknown => {
    if (typeof value === "string") return value.startsWith(publicOrigin) ? new URL(base).origin + value.slice(publicOrigin.length) : value;
    if (Array.isArray(value)) return value.map((v) => onBase(base, v));
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, onBase(base, v)]));
    return value;
  };
  // The scopes are the access levels, defined once in SQL (sql/auth.sql) and read from there.
  const levels = pool.query<{ levels: string[] }>("select sextant.access_levels() as levels").then((r) => r.rows[0]!.levels);
  levels.catch(() => {}); // reported by the requests that await it
  const asMetadata = {
    ...createOAuthMetadata({ provider, issuerUrl: new URL(settings.issuer) }),
    // RFC 9207: the authorization response names its issuer (routes below, /oauth/consent).
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: true,
  };
  const metadata = async (resource: string) =>
    ({ resource, authorization_servers: [new URL(settings.issuer).href], scopes_supported: await levels, resource_name: "Sextant" });
  const baseOf = (req: Request) => baseFor(req.headers.host, settings.issuer);
  const serve = (document: () => Promise<object>) => async (req: Request, res: Response, next: (e: unknown) => void) => {
    try {
      res.json(onBase(baseOf(req), await document()));
    } catch (error) {
      next(error);
    }
  };
  app.get(["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"],
    serve(async () => ({ ...asMetadata, scopes_supported: await levels })));
  // RFC 9728 for each resource, and at the root for the default one.
  app.get("/.well-known/oauth-protected-resource", serve(() => metadata(settings.resources[0]!)));
  for (const resource of settings.resources) {
    app.get(`/.well-known/oauth-protected-resource${new URL(resource).pathname}`, serve(() => metadata(resource)));
  }

  const resourceUrl = new URL(settings.resources[0]!);
  // The bodies of the SDK's /authorize (form) and /register (JSON) are read here, with its limits
  // (100 kB), so that one past them is refused at once (boundedBody); its own parsers then find
  // them read.
  app.post("/authorize", boundedBody(express.urlencoded({ extended: false, limit: "100kb" }), "100kb"));
  app.post("/register", boundedBody(express.json({ limit: "100kb" }), "100kb"));
  app.use(
    mcpAuthRouter({
      provider,
      issuerUrl: new URL(settings.issuer),
      resourceServerUrl: resourceUrl, // its metadata routes are the ones above, registered first
      resourceName: "Sextant",
    }),
  );
  app.get("/.well-known/jwks.json", async (_req, res, next) => {
    try {
      res.setHeader("Cache-Control", "max-age=300");
      res.json(await keys.publicKeys(true));
    } catch (error) {
      next(error);
    }
  });

  const readTicket = async (req: Request, typ: string, audience: string) => {
    try {
      return await keys.verify(String(req.body?.ticket ?? ""), { issuer: settings.issuer, audience, typ });
    } catch {
      return undefined;
    }
  };
  const expired = (res: Response) =>
    sendPage(res, 400, messagePage("Sign-in expired", "This sign-in request has expired or is not valid. Go back to the app and connect again."));
  const forged = (res: Response) =>
    sendPage(res, 403, messagePage("Form not accepted", "The form could not be verified (Sextant needs its cookie). Go back to the app and connect again."));

  app.post("/oauth/login", form, async (req, res, next) => {
    try {
      const claims = await readTicket(req, TICKET_LOGIN, `${settings.issuer}/oauth/login`);
      if (!claims) return expired(res);
      const csrf = readCookie(req, "sx_csrf");
      if (!sameSecret(csrf, req.body?.csrf)) return forged(res);
      const request = claims.req as AuthorizationRequest;
      const client = await provider.clientsStore.getClient(request.client_id);
      if (!client) return expired(res);
      const view = clientView(client, request.redirect_uri);
      const email = String(req.body?.email ?? "").trim().toLowerCase().slice(0, 320);
      const password = String(req.body?.password ?? "");
      const again = (status: number, error: string) =>
        sendPage(res, status, loginPage({ client: view, ticket: String(req.body.ticket), csrf: csrf!, email, error, upstream: upstream?.config.name }), request.redirect_uri);

      // Brute-force protection, in one SQL statement that both allows and counts the attempt
      // (sql/oauth.sql, oauth_login_attempt): per e-mail and client address, per address, and
      // per e-mail from addresses it never signed in from, each with a delay that doubles past
      // a few failures; a guesser elsewhere never slows the person at their usual address.
      if (!email || !password) return again(401, "The e-mail or the password is not right.");
      const address = throttleAddress(req.ip || req.socket.remoteAddress);
      const wait = (await pool.query("select sextant_private.oauth_login_attempt($1, $2) as wait", [email, address])).rows[0].wait as number;
      if (wait > 0) {
        res.setHeader("Retry-After", String(wait));
        const after = wait < 120 ? `${wait} seconds` : `${Math.ceil(wait / 60)} minutes`;
        return again(429, `Too many failed sign-ins for this e-mail from here. Wait ${after}, then try again.`);
      }
      const { rows } = await pool.query("select * from sextant_private.oauth_user_for_login($1)", [email]);
      const user = rows[0] as { user_id: number; password_hash: string | null; tenants: { tenant: string; name: string; access_level: string }[] } | undefined;
      if (!(await verifyPassword(password, user?.password_hash)) || !user) {
        deps.log.info({ email: email.replace(/^(.).*@/, "$1…@"), ip: req.ip }, "failed sign-in");
        return again(401, "The e-mail or the password is not right.");
      }
      await pool.query("select sextant_private.oauth_login_succeeded($1, $2)", [email, address]);
      await showConsent(res, request, view, user, email, csrf!);
    } catch (error) {
      next(error);
    }
  });

  /** After a successful sign-in (password or upstream): the consent page, or why there is none. */
  const showConsent = async (res: Response, request: AuthorizationRequest, view: ReturnType<typeof clientView>,
    user: { user_id: number; tenants: { tenant: string; name: string; access_level: string }[] }, email: string, csrf: string) => {
    if (user.tenants.length === 0) {
      return sendPage(res, 403, messagePage("No tenant", "Your account does not belong to any tenant yet. Ask a Sextant admin to add you."));
    }
    const ticket = await keys.sign({ req: request, uid: user.user_id, tenants: user.tenants }, {
      typ: TICKET_CONSENT, issuer: settings.issuer, audience: `${settings.issuer}/oauth/consent`, subject: email, ttlSeconds: 600,
    });
    sendPage(res, 200, consentPage({ client: view, email, ticket, csrf, tenants: user.tenants, resource: request.resource }), request.redirect_uri);
  };

  if (upstream) {
    // The sign-in's memo (upstream.ts: state, nonce, PKCE verifier and the authorization request).
    // Lax, not Strict: the provider sends the browser back with a cross-site navigation.
    const UPSTREAM_COOKIE = "sx_up";
    const memoCookie = { httpOnly: true, sameSite: "lax", secure: settings.issuer.startsWith("https:"), path: "/oauth/upstream" } as const;
    const unavailable = (res: Response) =>
      sendPage(res, 502, messagePage("Sign-in unavailable", `${upstream.config.name} cannot be reached right now. Try again, or sign in with your password.`));
    app.post("/oauth/upstream", form, async (req, res, next) => {
      try {
        const claims = await readTicket(req, TICKET_LOGIN, `${settings.issuer}/oauth/login`);
        if (!claims) return expired(res);
        if (!sameSecret(readCookie(req, "sx_csrf"), req.body?.csrf)) return forged(res);
        let begun;
        try {
          begun = await upstream.begin({ req: claims.req });
        } catch (error) {
          deps.log.warn({ err: error }, "upstream sign-in could not start");
          return unavailable(res);
        }
        res.cookie(UPSTREAM_COOKIE, begun.memo, { ...memoCookie, maxAge: 600_000 });
        res.redirect(303, begun.url);
      } catch (error) {
        next(error);
      }
    });
    app.get("/oauth/upstream/callback", async (req, res, next) => {
      try {
        // One use: the memo goes whatever the outcome.
        res.clearCookie(UPSTREAM_COOKIE, memoCookie);
        const outcome = await upstream.complete(readCookie(req, UPSTREAM_COOKIE), req.query);
        if (!outcome.ok) {
          if (outcome.reason === "expired") return expired(res);
          if (outcome.reason === "mismatch") return forged(res);
          deps.log.warn({ reason: outcome.reason, message: outcome.message }, "upstream sign-in failed");
          if (outcome.reason === "unavailable") return unavailable(res);
          return sendPage(res, 403, messagePage(outcome.reason === "refused" ? "Sign-in refused" : "Sign-in failed", outcome.message));
        }
        const request = outcome.carried.req as AuthorizationRequest;
        const client = await provider.clientsStore.getClient(request.client_id);
        if (!client) return expired(res);
        const { rows } = await pool.query("select * from sextant_private.oauth_user_for_login($1)", [outcome.email]);
        if (!rows[0]) {
          return sendPage(res, 403, messagePage("No Sextant account", `${outcome.email} has no Sextant account. Ask a Sextant admin to add you (sextant user create).`));
        }
        const csrf = randomToken();
        res.cookie("sx_csrf", csrf, { httpOnly: true, sameSite: "strict", secure: settings.issuer.startsWith("https:"), path: "/oauth", maxAge: 600_000 });
        await showConsent(res, request, clientView(client, request.redirect_uri), rows[0], outcome.email, csrf);
      } catch (error) {
        next(error);
      }
    });
  }

  app.post("/oauth/consent", form, async (req, res, next) => {
    try {
      const claims = await readTicket(req, TICKET_CONSENT, `${settings.issuer}/oauth/consent`);
      if (!claims) return expired(res);
      if (!sameSecret(readCookie(req, "sx_csrf"), req.body?.csrf)) return forged(res);
      const request = claims.req as AuthorizationRequest;
      const tenants = claims.tenants as { tenant: string; access_level: string }[];
      const back = new URL(request.redirect_uri);
      if (request.state !== undefined) back.searchParams.set("state", request.state);
      // RFC 9207: the issuer the client discovered (the name it used, see authorize in provider.ts).
      back.searchParams.set("iss", new URL(request.iss ?? settings.issuer).href);
      res.clearCookie("sx_csrf", { path: "/oauth" });
      if (req.body?.decision !== "allow") {
        back.searchParams.set("error", "access_denied");
        back.searchParams.set("error_description", "the person did not allow access");
        return void res.redirect(303, back.href);
      }
      const chosen = tenants.find((t) => t.tenant === req.body?.tenant);
      if (!chosen) return sendPage(res, 400, messagePage("No such tenant", "Pick one of the tenants listed on the previous page."));
      // The level granted (the person's, or less when the app's scope names levels) is SQL's choice.
      const code = randomToken();
      await pool.query("select sextant_private.oauth_create_code($1, $2, $3, $4, sextant_private.oauth_granted_level($5, $8), $6, $7, $8, $9, $10)", [
        sha256(code), request.client_id, claims.uid, chosen.tenant, chosen.access_level, request.redirect_uri, request.code_challenge,
        request.scopes, request.resource, 300,
      ]);
      back.searchParams.set("code", code);
      res.redirect(303, back.href);
    } catch (error) {
      next(error);
    }
  });

  return { provider };
}
