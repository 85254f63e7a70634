import { createHash, randomBytes } from "node:crypto";
import { createRemoteJWKSet, jwtVerify } from "jose";

export interface UpstreamConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
  name: string;
  /** Accept an ID token without `email_verified: true` (providers that issue only verified e-mails and omit the claim). */
  trustEmail?: boolean;
}

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

/**
 * Sign-in through an upstream OpenID Connect provider (authorization code + PKCE + nonce):
 * Sextant is the relying party; the provider proves the person's e-mail, and the person must
 * already exist in Sextant (`sextant user create`), which decides their tenants.
 */
export class UpstreamOidc {
  private discovery?: Promise<Discovery>;
  private jwks?: ReturnType<typeof createRemoteJWKSet>;

  constructor(readonly config: UpstreamConfig, private readonly callbackUrl: string) {
    if (!config.clientId || !config.clientSecret) throw new Error("SEXTANT_OIDC_ISSUER needs SEXTANT_OIDC_CLIENT_ID and SEXTANT_OIDC_CLIENT_SECRET");
  }

  private discover(): Promise<Discovery> {
    this.discovery ??= (async () => {
      const res = await fetch(`${this.config.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`the OpenID provider's discovery document answered ${res.status}`);
      const d = (await res.json()) as Discovery;
      if (d.issuer.replace(/\/$/, "") !== this.config.issuer) throw new Error(`the OpenID provider says its issuer is ${d.issuer}`);
      this.jwks = createRemoteJWKSet(new URL(d.jwks_uri));
      return d;
    })().catch((error) => {
      this.discovery = undefined;
      throw error;
    });
    return this.discovery;
  }

  /** Where to send the browser, and what to remember (in a cookie) until it comes back. */
  async start(): Promise<{ url: string; state: string; nonce: string; verifier: string }> {
    const d = await this.discover();
    const state = randomBytes(16).toString("base64url");
    const nonce = randomBytes(16).toString("base64url");
    const verifier = randomBytes(32).toString("base64url");
    const url = new URL(d.authorization_endpoint);
    for (const [k, v] of Object.entries({
      response_type: "code", client_id: this.config.clientId, redirect_uri: this.callbackUrl, scope: "openid email profile",
      state, nonce, code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256",
    })) {
      url.searchParams.set(k, v);
    }
    return { url: url.href, state, nonce, verifier };
  }

  /** Exchanges the code and verifies the ID token; returns the person's verified e-mail. */
  async finish(code: string, expected: { nonce: string; verifier: string }): Promise<string> {
    const d = await this.discover();
    const res = await fetch(d.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code, redirect_uri: this.callbackUrl, code_verifier: expected.verifier,
        client_id: this.config.clientId, client_secret: this.config.clientSecret,
      }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json().catch(() => ({}))) as { id_token?: string; error?: string };
    if (!res.ok || !body.id_token) throw new Error(`the OpenID provider refused the code (${body.error ?? res.status})`);
    const { payload } = await jwtVerify(body.id_token, this.jwks!, { issuer: d.issuer, audience: this.config.clientId, clockTolerance: 30 });
    if (payload.nonce !== expected.nonce) throw new Error("the ID token's nonce does not match this sign-in");
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
