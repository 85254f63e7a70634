import express, { type Express, type Request, type Response } from "express";
import type pg from "pg";
import type { Logger } from "pino";
import type { OperationGate } from "../audit/operation.ts";
import { buildPrincipal, type Principal } from "../auth/principal.ts";
import { createTenantLimits } from "../auth/tenantLimits.ts";
import type { Embedder } from "../dbt/embeddings.ts";
import { installDbtUpload } from "../dbt/upload.ts";
import type { UploadLimits } from "../dbt/uploadLimits.ts";
import { SextantError, toPublicError } from "../db/errors.ts";
import { boundedBody } from "../http/jsonBody.ts";
import { askServiceOf, streamAsk } from "../ask/http.ts";
import { callTool } from "../mcp/registerTools.ts";
import { allTools } from "../mcp/server.ts";
import { throttleAddress } from "../oauth/clientAddress.ts";
import type { KeyRing } from "../oauth/keys.ts";
import { messagePage } from "../oauth/pages.ts";
import { verifyPassword } from "../oauth/password.ts";
import { sendPage } from "../oauth/provider.ts";
import { UpstreamOidc, type UpstreamConfig } from "../oauth/upstream.ts";
import { CONSOLE_OPERATIONS, runOperation } from "./operations.ts";
import {
  clearSessionCookie, loadSession, newSecret, readCookie, sameOrigin, sameSecret, setSessionCookie, sha256,
  type ConsoleSession, type SessionSettings,
} from "./session.ts";
import { serveConsoleFiles } from "./static.ts";

export interface ConsoleDeps {
  pool: pg.Pool;
  gate: OperationGate;
  publicUrl: string;
  log: Logger;
  embedder?: Embedder;
  logError: (requestId: string, error: unknown) => void;
  /** Seconds without a request before a session ends (default 30 minutes, SEXTANT_CONSOLE_IDLE_MINUTES). */
  idleSeconds?: number;
  /** Seconds after sign-in when a session ends regardless (default 12 hours, SEXTANT_CONSOLE_MAX_HOURS). */
  maxSeconds?: number;
  /** The bounds of POST /dbt/upload (config.upload); the console's upload is that handler. */
  uploadLimits?: UploadLimits;
  /** The upstream OpenID provider OAuth signs people in with (config.oidc), offered on the sign-in page too. */
  upstream?: UpstreamConfig;
  /** Signs the upstream sign-in's memo cookie (state, nonce, PKCE verifier); needed with `upstream`. */
  keys?: KeyRing;
}

const tools = new Map(allTools.map((t) => [t.name, t]));
type SessionRequest = Request & { session?: ConsoleSession };

/**
 * The web console at /console: its page and assets, and a small JSON API under /console/api
 * for the page's script. People sign in with the same accounts and password check as OAuth
 * (sextant_private.oauth_*); every action runs an MCP tool (callTool) or a SQL function of
 * schema sextant as the person's own tenant role, through the one audit and rate-limit step.
 */
export function installConsole(app: Express, deps: ConsoleDeps): void {
  const env = process.env;
  const settings: SessionSettings = {
    cookie: "sx_console",
    secure: deps.publicUrl.startsWith("https:"),
    idleSeconds: deps.idleSeconds ?? Math.round(Number(env.SEXTANT_CONSOLE_IDLE_MINUTES || 30) * 60),
    maxSeconds: deps.maxSeconds ?? Math.round(Number(env.SEXTANT_CONSOLE_MAX_HOURS || 12) * 3600),
  };
  const limits = createTenantLimits(deps.pool);
  const api = express.Router();
  api.use((_req, res, next) => {
    res.setHeader("Cache-Control", "no-store");
    res.setHeader("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    next();
  });
  const checkOrigin = sameOrigin(new URL(deps.publicUrl).origin);

  const fail = (res: Response, status: number, code: string, message: string) => void res.status(status).json({ code, message });

  /** Requires a live session (and, for writes, its CSRF token); attaches it to the request. */
  const signedIn = (needTenant: boolean) => async (req: SessionRequest, res: Response, next: express.NextFunction) => {
    try {
      const session = await loadSession(deps.pool, settings, req);
      if (!session) return fail(res, 401, "SX401", "not signed in, or the session ended");
      if (req.method !== "GET" && !sameSecret(session.csrf, req.headers["x-csrf-token"])) {
        return fail(res, 403, "SX403", "request refused: the CSRF token is missing or wrong");
      }
      if (needTenant && (!session.tenant || !session.accessLevel)) return fail(res, 409, "SX409", "pick a tenant first");
      req.session = session;
      next();
    } catch (error) {
      next(error);
    }
  };

  // The console signs people in with the OAuth server's own accounts and password check; the
  // audit says "console" (a browser session), not "oauth" (an OAuth access token).
  const principalOf = (s: ConsoleSession): Promise<Principal> =>
    buildPrincipal(deps.pool, { tenant: s.tenant!, accessLevel: s.accessLevel!, subject: s.email, authMethod: "console" }, limits);

  const view = (s: ConsoleSession) => ({
    email: s.email, display_name: s.displayName, tenant: s.tenant, access_level: s.accessLevel,
    tenants: s.tenants, csrf: s.csrf, expires_at: s.expiresAt,
  });

  // dbt upload: the handler of POST /dbt/upload itself (src/dbt/upload.ts: admin check, limits,
  // loader, audit), mounted here with the session (cookie, CSRF token, Origin) standing in for
  // its Bearer credential: a one-use random key, known only to this process, names the principal.
  // Before express.json: the body is the artifacts' stream, which that handler reads itself.
  const uploaders = new Map<string, Principal>();
  api.post("/dbt/upload", checkOrigin, signedIn(true), async (req: SessionRequest, res, next) => {
    try {
      const key = newSecret();
      uploaders.set(key, await principalOf(req.session!));
      res.on("close", () => uploaders.delete(key));
      req.headers.authorization = `Bearer ${key}`;
      next();
    } catch (error) {
      next(error);
    }
  });
  installDbtUpload(api as unknown as Express, {
    pool: deps.pool, gate: deps.gate, embedder: deps.embedder, logError: deps.logError, limits: deps.uploadLimits,
    authenticate: async (key) => {
      const principal = uploaders.get(key);
      uploaders.delete(key);
      if (!principal) throw new SextantError("SX401", "not signed in, or the session ended");
      return principal;
    },
  });
  api.use(boundedBody(express.json({ limit: "256kb" }), "256kb"));

  api.post("/login", checkOrigin, async (req, res, next) => {
    try {
      const email = String(req.body?.email ?? "").trim().toLowerCase().slice(0, 320);
      const password = String(req.body?.password ?? "").slice(0, 1000);
      if (!email || !password) return fail(res, 401, "SX401", "the e-mail or the password is not right");
      // The OAuth sign-in's brute-force limits, shared (same SQL, same counters).
      const address = throttleAddress(req.ip || req.socket.remoteAddress);
      const wait = (await deps.pool.query("select sextant_private.oauth_login_attempt($1, $2) as wait", [email, address])).rows[0].wait as number;
      if (wait > 0) {
        res.setHeader("Retry-After", String(wait));
        return fail(res, 429, "SX429", `too many failed sign-ins for this e-mail from here; wait ${wait} seconds`);
      }
      const { rows } = await deps.pool.query("select * from sextant_private.oauth_user_for_login($1)", [email]);
      const user = rows[0] as { user_id: number; password_hash: string | null } | undefined;
      if (!(await verifyPassword(password, user?.password_hash)) || !user) {
        deps.log.info({ email: email.replace(/^(.).*@/, "$1…@"), ip: req.ip }, "failed console sign-in");
        return fail(res, 401, "SX401", "the e-mail or the password is not right");
      }
      await deps.pool.query("select sextant_private.oauth_login_succeeded($1, $2)", [email, address]);
      res.json(view(await startSession(res, user.user_id)));
    } catch (error) {
      next(error);
    }
  });

  /** A new session for the person (cookie set on `res`); a person in a single tenant has it picked at once. */
  const startSession = async (res: Response, userId: number): Promise<ConsoleSession> => {
    const secret = newSecret();
    await deps.pool.query("select sextant_private.console_session_start($1, $2, $3)", [sha256(secret), userId, newSecret()]);
    setSessionCookie(res, settings, secret);
    // The session as the next request sees it.
    const reload = async () => (await loadSession(deps.pool, settings, { headers: { cookie: `${settings.cookie}=${secret}` } } as Request))!;
    const session = await reload();
    if (session.tenants.length !== 1) return session;
    await deps.pool.query("select sextant_private.console_session_pick($1, $2)", [session.idHash, session.tenants[0]!.tenant]);
    return reload();
  };

  // Sign-in through the upstream OpenID provider OAuth uses (src/oauth/upstream.ts: code + PKCE +
  // nonce, the ID token checked there), mapped to a person by OAuth's own SQL
  // (oauth_user_for_login: an enabled account with that e-mail); then the usual session.
  const origin = deps.publicUrl.replace(/\/$/, "");
  if (deps.upstream && !deps.keys) throw new Error("the console's upstream sign-in needs the server's key ring");
  const upstream = deps.upstream ? new UpstreamOidc(deps.upstream, {
    callbackUrl: `${origin}/console/upstream/callback`, keys: deps.keys!,
    memo: { issuer: origin, audience: `${origin}/console/upstream`, typ: "sx-console-upstream+jwt" },
  }) : undefined;
  // The sign-in's memo (upstream.ts: state, nonce, PKCE verifier). Lax, not Strict: the provider
  // sends the browser back with a cross-site navigation.
  const MEMO_COOKIE = "sx_console_up";
  const memoCookie = { httpOnly: true, sameSite: "lax", secure: settings.secure, path: "/console/upstream" } as const;

  api.get("/sign-in", (_req, res) => void res.json({ upstream: upstream?.config.name ?? null }));

  // Started by the page's script (a fetch, so Origin is checked), which then goes to the URL returned.
  api.post("/upstream", checkOrigin, async (_req, res) => {
    if (!upstream) return fail(res, 404, "SX404", "no upstream sign-in is configured");
    try {
      const { url, memo } = await upstream.begin();
      res.cookie(MEMO_COOKIE, memo, { ...memoCookie, maxAge: 600_000 });
      res.json({ url });
    } catch (error) {
      deps.log.warn({ err: error }, "console upstream sign-in could not start");
      fail(res, 502, "SX502", `${upstream.config.name} cannot be reached right now; try again, or sign in with your password`);
    }
  });

  if (upstream) {
    /** A refusal: a plain page (OAuth's); no session is made (one the browser has already is left alone). */
    const refuse = (res: Response, status: number, title: string, message: string) => {
      sendPage(res, status, messagePage(title, `${message} Open the console (/console) to sign in again.`));
    };
    const titles = { expired: "Sign-in expired", mismatch: "Sign-in refused", refused: "Sign-in refused", failed: "Sign-in failed", unavailable: "Sign-in unavailable" };
    const statuses = { expired: 400, mismatch: 403, refused: 403, failed: 403, unavailable: 502 };
    app.get("/console/upstream/callback", async (req, res, next) => {
      try {
        // One use: the memo goes whatever the outcome.
        res.clearCookie(MEMO_COOKIE, memoCookie);
        const outcome = await upstream.complete(readCookie(req, MEMO_COOKIE), req.query);
        if (!outcome.ok) {
          if (outcome.reason !== "expired") deps.log.warn({ reason: outcome.reason, message: outcome.message }, "console upstream sign-in failed");
          return refuse(res, statuses[outcome.reason], titles[outcome.reason], outcome.message);
        }
        const { rows } = await deps.pool.query("select * from sextant_private.oauth_user_for_login($1)", [outcome.email]);
        if (!rows[0]) {
          deps.log.info({ email: outcome.email.replace(/^(.).*@/, "$1…@") }, "console upstream sign-in: no account");
          return refuse(res, 403, "No Sextant account", `${outcome.email} has no Sextant account. Ask a Sextant admin to add you (sextant user create).`);
        }
        await startSession(res, Number(rows[0].user_id));
        res.setHeader("Cache-Control", "no-store");
        res.redirect(303, "/console");
      } catch (error) {
        next(error);
      }
    });
  }

  api.get("/session", signedIn(false), (req: SessionRequest, res) => void res.json(view(req.session!)));

  api.post("/tenant", checkOrigin, signedIn(false), async (req: SessionRequest, res, next) => {
    try {
      const tenant = req.body?.tenant;
      if (typeof tenant !== "string" || tenant.length > 63) return fail(res, 400, "SX400", "tenant must be a tenant's name");
      await deps.pool.query("select sextant_private.console_session_pick($1, $2)", [req.session!.idHash, tenant]);
      res.json({ tenant });
    } catch (error) {
      next(error);
    }
  });

  api.post("/logout", checkOrigin, signedIn(false), async (req: SessionRequest, res, next) => {
    try {
      await deps.pool.query("select sextant_private.console_session_end($1)", [req.session!.idHash]);
      clearSessionCookie(res, settings);
      res.json({ signed_out: true });
    } catch (error) {
      next(error);
    }
  });

  // An MCP tool, exactly as an agent calls it (same guard, SQL, audit and limits).
  api.post("/tool/:name", checkOrigin, signedIn(true), async (req: SessionRequest, res, next) => {
    try {
      const spec = tools.get(String(req.params.name));
      if (!spec) return fail(res, 404, "SX404", "no such tool");
      const result = await callTool(spec, { pool: deps.pool, gate: deps.gate, embedder: deps.embedder, logError: deps.logError, principalOf: () => { throw new Error("unused"); } },
        await principalOf(req.session!), req.body?.input ?? {});
      if (result.isError) {
        const message = result.content.map((c) => ("text" in c ? c.text : "")).join("\n");
        return void res.status(400).json({ code: "SX400", message });
      }
      res.json({ data: result.structuredContent });
    } catch (error) {
      next(error);
    }
  });

  api.post("/op/:name", checkOrigin, signedIn(true), async (req: SessionRequest, res, next) => {
    try {
      const name = String(req.params.name);
      if (!Object.hasOwn(CONSOLE_OPERATIONS, name)) return fail(res, 404, "SX404", "no such operation");
      const input = req.body?.input && typeof req.body.input === "object" ? req.body.input : {};
      const out = await runOperation(deps, await principalOf(req.session!), name, input);
      if (!out.ok) return void res.status(out.error.status).json({ code: out.error.code, message: out.error.message, detail: out.error.detail, hint: out.error.hint });
      res.json({ data: out.data });
    } catch (error) {
      next(error);
    }
  });

  // Ask in plain English (src/ask/, ASK's): the question answered as server-sent events, as the person.
  api.post("/ask", checkOrigin, signedIn(true), async (req: SessionRequest, res, next) => { try { await streamAsk(askServiceOf(req.app), await principalOf(req.session!), req.body, res, next); } catch (error) { next(error); } });

  api.use((_req, res) => fail(res, 404, "SX404", "no such console API"));
  api.use((error: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    const e = error as { type?: string };
    if (e.type === "entity.too.large") return fail(res, 413, "SX413", "request body is too large");
    if (e.type === "entity.parse.failed") return fail(res, 400, "SX400", "request body is not valid JSON");
    const pub = toPublicError(error, deps.logError);
    res.status(pub.status).json({ code: pub.code, message: pub.message, detail: pub.detail, hint: pub.hint });
  });

  app.use("/console/api", api);
  serveConsoleFiles(app);
}
