import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

/**
 * A tiny OpenID provider for tests: discovery, an authorize endpoint that signs in `email`
 * at once, a token endpoint that checks the client secret, PKCE and redirect URI, and JWKS.
 */
export async function startFakeOidc(opts: { clientId: string; clientSecret: string }) {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const codes = new Map<string, { nonce: string; challenge: string; redirect: string; email: string }>();
  // What the next sign-in gets: the e-mail, and (to test a relying party's checks) a wrong nonce or audience.
  // `emailVerified` is the claim's value ("omit" leaves it out). `unavailable` makes the provider
  // answer 503 on every endpoint ("all") or on one ("token", "jwks"), as one that is down would;
  // `silent` makes the token endpoint take the request and never answer. `endless` makes one
  // endpoint ("discovery", "token", "jwks") answer 200 with a JSON body that never ends, sent as
  // fast as it is read (`trickle`: a byte a second); `sentBytes` counts what such bodies sent.
  const state: {
    email: string; nonce?: string; audience?: string; emailVerified?: unknown; unavailable?: "all" | "token" | "jwks"; silent?: boolean;
    endless?: "discovery" | "token" | "jwks"; trickle?: boolean; sentBytes: number;
  } = { email: "ann@acme.test", sentBytes: 0 };
  let issuer = "";
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, issuer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (state.unavailable === "all" || (state.unavailable && url.pathname === `/${state.unavailable}`)) {
      return json(503, { error: "temporarily_unavailable" });
    }
    if (state.endless && url.pathname === (state.endless === "discovery" ? "/.well-known/openid-configuration" : `/${state.endless}`)) {
      for await (const _ of req); // the token request's form
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.from(`[${"0,".repeat(32_767)}`);
      let open = true;
      res.on("close", () => (open = false));
      while (open) {
        const piece = state.trickle ? chunk.subarray(0, 1) : chunk;
        state.sentBytes += piece.length;
        if (!res.write(piece)) await new Promise((r) => { res.once("drain", r); res.once("close", r); });
        if (state.trickle) await new Promise((r) => setTimeout(r, 1000));
      }
      return;
    }
    if (url.pathname === "/.well-known/openid-configuration") {
      return json(200, { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` });
    }
    if (url.pathname === "/jwks") return json(200, { keys: [jwk] });
    if (url.pathname === "/authorize") {
      const code = randomBytes(12).toString("base64url");
      codes.set(code, { nonce: url.searchParams.get("nonce")!, challenge: url.searchParams.get("code_challenge")!, redirect: url.searchParams.get("redirect_uri")!, email: state.email });
      const back = new URL(url.searchParams.get("redirect_uri")!);
      back.searchParams.set("code", code);
      back.searchParams.set("state", url.searchParams.get("state")!);
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (url.pathname === "/token" && state.silent) return;
    if (url.pathname === "/token" && req.method === "POST") {
      let raw = "";
      for await (const chunk of req) raw += chunk;
      const form = new URLSearchParams(raw);
      const entry = codes.get(form.get("code") ?? "");
      if (form.get("client_id") !== opts.clientId || form.get("client_secret") !== opts.clientSecret) return json(401, { error: "invalid_client" });
      if (!entry || entry.redirect !== form.get("redirect_uri")) return json(400, { error: "invalid_grant" });
      if (createHash("sha256").update(form.get("code_verifier") ?? "").digest("base64url") !== entry.challenge) return json(400, { error: "invalid_grant" });
      codes.delete(form.get("code")!);
      const verified = state.emailVerified === undefined ? { email_verified: true } : state.emailVerified === "omit" ? {} : { email_verified: state.emailVerified };
      const idToken = await new SignJWT({ email: entry.email, ...verified, nonce: state.nonce ?? entry.nonce })
        .setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuer(issuer).setAudience(state.audience ?? opts.clientId).setSubject("upstream-" + entry.email)
        .setIssuedAt().setExpirationTime("5m").sign(privateKey);
      return json(200, { access_token: "x", token_type: "Bearer", id_token: idToken });
    }
    json(404, { error: "not found" });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  // Stopping ends the connections a client keeps alive too: the provider is gone, not half there.
  return { issuer, state, close: () => new Promise((r) => { server.close(r); server.closeAllConnections(); }) };
}
