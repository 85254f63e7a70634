import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";

export const REDIRECT = "http://127.0.0.1:9/callback";

/** An OAuth client for the MCP SDK that keeps everything in memory and records where it was sent to sign in. */
export class MemoryOAuthClient implements OAuthClientProvider {
  info?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier = "";
  authUrl?: URL;
  constructor(readonly name = "Test MCP client", readonly scope?: string) {}
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata(): OAuthClientMetadata {
    return { client_name: this.name, redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none", ...(this.scope ? { scope: this.scope } : {}) };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

export function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

function hidden(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no hidden field ${name} in: ${html.slice(0, 400)}`);
  return m[1]!.replace(/&amp;/g, "&").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">");
}

export interface SignInResult {
  status: number;
  /** Where the browser was sent at the end (the app's redirect URI with code or error). */
  location?: URL;
  html: string;
}

/**
 * Does in HTTP what a person does in a browser: opens the authorization URL, submits the
 * sign-in form, then the consent form (allow or deny, for a tenant).
 */
export async function signIn(authUrl: URL | string, email: string, password: string, opts: { tenant?: string; decision?: string; dropCookie?: boolean } = {}): Promise<SignInResult> {
  const first = await fetch(authUrl, { redirect: "manual" });
  const html = await first.text();
  if (first.status !== 200) return { status: first.status, html, location: first.headers.get("location") ? new URL(first.headers.get("location")!) : undefined };
  const cookie = (first.headers.get("set-cookie") ?? "").split(";")[0]!;
  const base = new URL(authUrl).origin;
  const post = (path: string, fields: Record<string, string>) =>
    fetch(`${base}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", ...(opts.dropCookie ? {} : { cookie }) },
      body: new URLSearchParams(fields).toString(),
    });
  const login = await post("/oauth/login", { ticket: hidden(html, "ticket"), csrf: hidden(html, "csrf"), email, password });
  const consentHtml = await login.text();
  if (login.status !== 200 || !consentHtml.includes('action="/oauth/consent"')) return { status: login.status, html: consentHtml };
  const tenant = opts.tenant ?? /name="tenant" value="([^"]+)"/.exec(consentHtml)?.[1] ?? /<option value="([^"]+)"/.exec(consentHtml)?.[1] ?? "";
  const consent = await post("/oauth/consent", { ticket: hidden(consentHtml, "ticket"), csrf: hidden(consentHtml, "csrf"), decision: opts.decision ?? "allow", tenant });
  const location = consent.headers.get("location");
  return { status: consent.status, html: await consent.text(), location: location ? new URL(location) : undefined };
}

/** What the sign-in form of one authorization request needs to be posted: its ticket, CSRF token and cookie. */
export interface LoginForm {
  base: string;
  ticket: string;
  csrf: string;
  cookie: string;
}

/** Opens an authorization URL as a browser would and keeps what posting its sign-in form takes. */
export async function openLoginForm(authUrl: URL | string): Promise<LoginForm> {
  const res = await fetch(authUrl, { redirect: "manual" });
  const html = await res.text();
  if (res.status !== 200) throw new Error(`the authorization URL answered ${res.status}: ${html.slice(0, 300)}`);
  return {
    base: new URL(authUrl).origin,
    ticket: hidden(html, "ticket"),
    csrf: hidden(html, "csrf"),
    cookie: (res.headers.get("set-cookie") ?? "").split(";")[0]!,
  };
}

/**
 * Posts the sign-in form from a chosen local address (any of 127.0.0.0/8 reaches a server on
 * 127.0.0.1), so a test can be two people at two addresses. Resolves with the status, the
 * Retry-After header and the page.
 */
export function postLogin(form: LoginForm, email: string, password: string, localAddress = "127.0.0.1"): Promise<{ status: number; retryAfter?: string; html: string }> {
  const body = new URLSearchParams({ ticket: form.ticket, csrf: form.csrf, email, password }).toString();
  return postFrom(new URL("/oauth/login", form.base), body, { "content-type": "application/x-www-form-urlencoded", cookie: form.cookie }, localAddress)
    .then((r) => ({ status: r.status, retryAfter: r.retryAfter, html: r.text }));
}

/** POSTs `body` to `url` from the local address given (fetch cannot choose one). */
export function postFrom(url: URL | string, body: string, headers: Record<string, string>, localAddress: string): Promise<{ status: number; retryAfter?: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", localAddress, headers: { ...headers, "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string | undefined, text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The /authorize URL on `base` for a public client with PKCE (S256) and REDIRECT; `extra` adds or replaces parameters. */
export function authorizeUrlAt(base: string, clientId: string, challenge: string, extra: Record<string, string> = {}): URL {
  const u = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries({ response_type: "code", client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: "S256", state: "s", ...extra })) {
    u.searchParams.set(k, v);
  }
  return u;
}

/** POST /token on `base` with form `fields`: the status and the JSON answer. */
export async function tokenAt(base: string, fields: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(`${base}/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}
