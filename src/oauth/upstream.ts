import { createHash, randomBytes } from "node:crypto";
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload } from "jose";
import { sameSecret } from "../http/cookies.ts";
import { readLimited } from "../http/readLimited.ts";
import type { KeyRing } from "./keys.ts";

export interface UpstreamConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
  name: string;
  /** Accept an ID token without `email_verified: true` (providers that issue only verified e-mails and omit the claim). */
  trustEmail?: boolean;
}

/** Where one door's sign-in comes back, and how its memo (a signed, short-lived cookie value) is named. */
export interface UpstreamDoor {
  callbackUrl: string;
  keys: KeyRing;
  /** The memo's JWT issuer, audience and `typ`: a memo made for one door is refused by the other. */
  memo: { issuer: string; audience: string; typ: string };
}

/** How a sign-in came back: the verified e-mail and what `begin` carried, or why not. */
export type UpstreamOutcome =
  | { ok: true; email: string; carried: JWTPayload }
  | {
      ok: false;
      /** expired: no valid memo · mismatch: not this sign-in's state · refused: the provider said no ·
       *  failed: its answer did not prove who the person is · unavailable: it could not be reached. */
      reason: "expired" | "mismatch" | "refused" | "failed" | "unavailable";
      message: string;
    };

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

/** The provider (or its network) is down: a 502 for the person, not a refusal of who they are. */
class Unreachable extends Error {}

const MEMO_SECONDS = 600;
const TIMEOUT_MS = 10_000;
/** The most an answer of the provider may hold (discovery, token, key set: a few KB each). */
const MAX_BODY_BYTES = 1_000_000;

/**
 * Sign-in through an upstream OpenID Connect provider (authorization code + PKCE + nonce):
 * Sextant is the relying party; the provider proves the person's e-mail, and the person must
 * already exist in Sextant (`sextant user create`), which decides their tenants. One instance
 * per door (OAuth's sign-in page, the console): `begin` and `complete` are the whole exchange;
 * the door keeps the memo in its own cookie and maps the e-mail to a person.
 */
export class UpstreamOidc {
  private discovery?: Promise<Discovery>;
  private jwks?: ReturnType<typeof createRemoteJWKSet>;

  constructor(readonly config: UpstreamConfig, private readonly door: UpstreamDoor) {
    if (!config.clientId || !config.clientSecret) throw new Error("SEXTANT_OIDC_ISSUER needs SEXTANT_OIDC_CLIENT_ID and SEXTANT_OIDC_CLIENT_SECRET");
  }

  /**
   * fetch with a deadline, the body read whole: no answer (or no whole body) in time, a body
   * over MAX_BODY_BYTES, or a 5xx is Unreachable (a 4xx is the provider's answer). A hostile or
   * broken provider's endless body is cut off at the cap, never held in memory whole.
   */
  private async reach(what: string, url: string | URL, init: RequestInit = {}): Promise<Response> {
    let res: Response;
    let body: string;
    try {
      res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(TIMEOUT_MS) });
      if (res.status >= 500) {
        await res.body?.cancel().catch(() => {});
        throw new Unreachable(`its ${what} answered ${res.status}`);
      }
      body = await readLimited(res, MAX_BODY_BYTES, () => new Unreachable(`its ${what} sent more than ${MAX_BODY_BYTES / 1_000_000} MB`));
    } catch (error) {
      if (error instanceof Unreachable) throw error;
      const timedOut = (error as Error).name === "TimeoutError" || (error as Error).name === "AbortError";
      throw new Unreachable(`its ${what} ${timedOut ? "did not answer in time" : "could not be reached"}`, { cause: error });
    }
    // Handed on as a Response: jose (the key set) reads it as one.
    return new Response([204, 205, 304].includes(res.status) ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }

  private discover(): Promise<Discovery> {
    this.discovery ??= (async () => {
      const res = await this.reach("discovery document", `${this.config.issuer}/.well-known/openid-configuration`);
      if (!res.ok) throw new Unreachable(`its discovery document answered ${res.status}`);
      const d = (await res.json().catch(() => ({}))) as Discovery;
      if (typeof d.issuer !== "string" || d.issuer.replace(/\/$/, "") !== this.config.issuer) {
        throw new Unreachable(`its discovery document names the issuer ${String(d.issuer).slice(0, 200)}, not ${this.config.issuer}`);
      }
      this.jwks = createRemoteJWKSet(new URL(d.jwks_uri), { [customFetch]: (url: string, init: RequestInit) => this.reach("key set", url, init) });
      return d;
    })().catch((error) => {
      this.discovery = undefined;
      throw error;
    });
    return this.discovery;
  }

  /**
   * Starts a sign-in: new state, nonce and PKCE verifier. Returns the provider's URL to send the
   * browser to, and the memo for the door's cookie (signed; `carry` rides along to `complete`).
   * Throws when the provider cannot be reached.
   */
  async begin(carry: Record<string, unknown> = {}): Promise<{ url: string; memo: string }> {
    const d = await this.discover();
    const state = randomBytes(16).toString("base64url");
    const nonce = randomBytes(16).toString("base64url");
    const verifier = randomBytes(32).toString("base64url");
    const url = new URL(d.authorization_endpoint);
    for (const [k, v] of Object.entries({
      response_type: "code", client_id: this.config.clientId, redirect_uri: this.door.callbackUrl, scope: "openid email profile",
      state, nonce, code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256",
    })) {
      url.searchParams.set(k, v);
    }
    const memo = await this.door.keys.sign({ ...carry, state, nonce, verifier }, { ...this.door.memo, subject: "upstream", ttlSeconds: MEMO_SECONDS });
    return { url: url.href, memo };
  }

  /**
   * Finishes a sign-in from the callback's memo (the door's cookie, used once: the door clears
   * it) and query: checks the state, exchanges the code, verifies the ID token (signature,
   * issuer, audience, nonce, `email_verified`) and returns the person's e-mail in lower case.
   */
  async complete(memoToken: string | undefined, query: Record<string, unknown>): Promise<UpstreamOutcome> {
    const name = this.config.name;
    let memo: JWTPayload;
    try {
      memo = await this.door.keys.verify(memoToken ?? "", this.door.memo);
    } catch {
      return { ok: false, reason: "expired", message: "This sign-in was not started in this browser, was already used, or took more than 10 minutes." };
    }
    const state = query.state;
    if (typeof state !== "string" || !sameSecret(String(memo.state), state)) {
      return { ok: false, reason: "mismatch", message: "The answer from the sign-in provider does not belong to this sign-in." };
    }
    if (typeof query.error === "string") {
      return { ok: false, reason: "refused", message: `${name} did not sign you in (${query.error.slice(0, 100)}).` };
    }
    try {
      const email = await this.exchange(String(query.code ?? "").slice(0, 2000), String(memo.nonce), String(memo.verifier));
      const { state: _s, nonce: _n, verifier: _v, ...carried } = memo;
      return { ok: true, email, carried };
    } catch (error) {
      if (error instanceof Unreachable) {
        return { ok: false, reason: "unavailable", message: `${name} cannot be reached right now (${error.message}). Try again in a moment.` };
      }
      return { ok: false, reason: "failed", message: `${name} could not confirm who you are: ${(error as Error).message}.` };
    }
  }

  /** Exchanges the code and verifies the ID token; returns the person's verified e-mail. */
  private async exchange(code: string, nonce: string, verifier: string): Promise<string> {
    const d = await this.discover();
    const res = await this.reach("token endpoint", d.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code, redirect_uri: this.door.callbackUrl, code_verifier: verifier,
        client_id: this.config.clientId, client_secret: this.config.clientSecret,
      }).toString(),
    });
    const body = (await res.json().catch(() => ({}))) as { id_token?: string; error?: string };
    if (!res.ok || !body.id_token) throw new Error(`the OpenID provider refused the code (${String(body.error ?? res.status).slice(0, 100)})`);
    const { payload } = await jwtVerify(body.id_token, this.jwks!, { issuer: d.issuer, audience: this.config.clientId, clockTolerance: 30 });
    if (payload.nonce !== nonce) throw new Error("the ID token's nonce does not match this sign-in");
    // Verified means the claim says so: a missing claim or the string "false" is not a yes,
    // unless the operator says this provider issues verified e-mails only.
    const verified = payload.email_verified === true || (this.config.trustEmail === true && payload.email_verified === undefined);
    if (typeof payload.email !== "string" || !verified) throw new Error("the OpenID provider did not give a verified e-mail");
    // Only ASCII is matched: lower-casing folds some other letters into ASCII ones (the Kelvin
    // sign U+212A into k), which would let a provider's 'Kim@' stand for Sextant's 'kim@'.
    const email = payload.email.trim();
    if (!/^[\x21-\x7e]{3,254}$/.test(email) || !email.includes("@")) throw new Error("the OpenID provider gave an e-mail Sextant does not match (only ASCII addresses are)");
    return email.replace(/[A-Z]/g, (c) => c.toLowerCase());
  }
}
