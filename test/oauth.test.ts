import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { beforeAll, describe, expect, test } from "vitest";
import { hashPassword } from "../src/oauth/password.ts";
import { runCli } from "./helpers/cli.ts";
import { callOk, textOf } from "./helpers/mcpClient.ts";
import { startFakeOidc } from "./helpers/fakeOidc.ts";
import { authorizeUrlAt, MemoryOAuthClient, pkce, REDIRECT, signIn, tokenAt } from "./helpers/oauth.ts";
import { freePort } from "./helpers/ports.ts";
import { startTestServer } from "./helpers/server.ts";
import { useTestServer } from "./helpers/setup.ts";

const ACCESS_TTL = 3;
let base: string;
const { db, server } = useTestServer(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  return { PORT: String(port), SEXTANT_PUBLIC_URL: base, SEXTANT_OAUTH_ACCESS_TTL: String(ACCESS_TTL) };
});
const ANN = "ann@acme.test";
const BOB = "bob@acme.test";
const PASSWORD = "correct horse battery staple";

beforeAll(async () => {
  const hash = await hashPassword(PASSWORD);
  // Ann: analyst in acme, viewer in globex. Bob: viewer in acme only.
  await db.admin.query("select * from sextant_private.upsert_user($1, $2, 'Ann', 'acme', 'analyst')", [ANN, hash]);
  await db.admin.query("select * from sextant_private.upsert_user($1, null, null, 'globex', 'viewer')", [ANN]);
  await db.admin.query("select * from sextant_private.upsert_user($1, $2, 'Bob', 'acme', 'viewer')", [BOB, hash]);
});

/** Registers a public client over RFC 7591, as an MCP client does. */
async function register(name = "manual client", redirect = REDIRECT) {
  const res = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: name, redirect_uris: [redirect], token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"], response_types: ["code"] }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { client_id: string };
}

const authorizeUrl = (clientId: string, challenge: string, extra?: Record<string, string>) => authorizeUrlAt(base, clientId, challenge, extra);
const token = (fields: Record<string, string>) => tokenAt(base, fields);

/** A code and tokens for a person, through the whole browser flow. */
async function tokensFor(email: string, opts: { tenant?: string; resource?: string } = {}) {
  const { client_id } = await register();
  const { verifier, challenge } = pkce();
  const done = await signIn(authorizeUrl(client_id, challenge, opts.resource ? { resource: opts.resource } : {}), email, PASSWORD, { tenant: opts.tenant });
  const code = done.location!.searchParams.get("code")!;
  const t = await token({ grant_type: "authorization_code", code, code_verifier: verifier, client_id, redirect_uri: REDIRECT, ...(opts.resource ? { resource: opts.resource } : {}) });
  expect(t.status).toBe(200);
  return { client_id, code, verifier, access_token: t.body.access_token!, refresh_token: t.body.refresh_token! };
}

async function mcpWith(accessToken: string) {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } });
  const client = new Client({ name: "t", version: "1" });
  await client.connect(transport);
  return client;
}

async function mcpStatus(accessToken: string) {
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } }),
  });
  return { status: res.status, wwwAuthenticate: res.headers.get("www-authenticate") ?? "" };
}

describe("discovery", () => {
  test("401 points at the protected-resource metadata, which points at the authorization server (RFC 9728, RFC 8414)", async () => {
    const res = await fetch(`${base}/mcp`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(401);
    const header = res.headers.get("www-authenticate")!;
    expect(header).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`);
    const prm = await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json();
    expect(prm).toMatchObject({ resource: `${base}/mcp`, authorization_servers: [`${base}/`] });
    expect(await (await fetch(`${base}/.well-known/oauth-protected-resource`)).json()).toMatchObject({ resource: `${base}/mcp` });
    const as = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
    expect(as).toMatchObject({
      issuer: `${base}/`, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`,
      registration_endpoint: `${base}/register`, revocation_endpoint: `${base}/revoke`, code_challenge_methods_supported: ["S256"],
      grant_types_supported: ["authorization_code", "refresh_token"],
    });
    const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json();
    expect(jwks.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256" });
    expect(jwks.keys[0].d).toBeUndefined();
    // The scopes are the access levels, as SQL defines them (sql/auth.sql).
    const levels = (await db.admin.query("select sextant.access_levels() as l")).rows[0].l;
    expect(levels).toEqual(["viewer", "analyst", "admin"]);
    expect(as.scopes_supported).toEqual(levels);
    expect(prm.scopes_supported).toEqual(levels);
  });

  test("an app's scope narrows the level a consent grants, never widens it", async () => {
    const level = async (held: string, scopes: string[]) =>
      (await db.admin.query("select sextant_private.oauth_granted_level($1, $2) as l", [held, scopes])).rows[0].l;
    expect(await level("analyst", [])).toBe("analyst");
    expect(await level("analyst", ["mcp", "openid"])).toBe("analyst");
    expect(await level("analyst", ["viewer"])).toBe("viewer");
    expect(await level("analyst", ["viewer", "admin"])).toBe("viewer");
    expect(await level("admin", ["viewer", "analyst"])).toBe("analyst");
    expect(await level("viewer", ["admin"])).toBe("viewer");
    // Through the consent form: Ann, an analyst in acme, signs in an app that asks for viewer.
    const { client_id } = await register("asks for viewer");
    const { verifier, challenge } = pkce();
    const done = await signIn(authorizeUrl(client_id, challenge, { scope: "viewer" }), ANN, PASSWORD, { tenant: "acme" });
    const code = done.location!.searchParams.get("code")!;
    const t = await token({ grant_type: "authorization_code", code, code_verifier: verifier, client_id, redirect_uri: REDIRECT });
    expect(t.status).toBe(200);
    const client = await mcpWith(t.body.access_token!);
    expect((await client.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({ tenant: "acme", access_level: "viewer" });
    await client.close();
  });
});

describe("the full flow with the MCP SDK's client auth", () => {
  test("register, sign in, consent, token, tool call, refresh (rotated), revoke", { timeout: 30_000 }, async () => {
    const provider = new MemoryOAuthClient("Claude (test)");
    const first = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider });
    await expect(new Client({ name: "t", version: "1" }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.info?.client_id).toBeTruthy(); // registered itself (RFC 7591)
    expect(provider.authUrl?.searchParams.get("code_challenge_method")).toBe("S256");
    expect(provider.authUrl?.searchParams.get("resource")).toBe(`${base}/mcp`);

    const done = await signIn(provider.authUrl!, ANN, PASSWORD, { tenant: "acme" });
    expect(done.status).toBe(303);
    expect(done.location!.origin + done.location!.pathname).toBe(REDIRECT);
    expect(done.location!.searchParams.get("iss")).toBe(`${base}/`);
    await first.finishAuth(done.location!.searchParams.get("code")!);

    const client = new Client({ name: "t", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider }));
    expect(await callOk(client, "whoami")).toMatchObject({ tenant: "acme", access_level: "analyst", auth_method: "oauth", principal: ANN });
    const firstRefresh = provider.saved!.refresh_token!;
    // Audited like any call, with the person and the method.
    await new Promise((r) => setTimeout(r, 400));
    const audited = await db.admin.query("select count(*)::int as n from sextant.audit_events where auth_method = 'oauth' and principal = $1 and tool = 'whoami'", [ANN]);
    expect(audited.rows[0].n).toBeGreaterThanOrEqual(1);

    // The access token expires; the SDK refreshes it and the refresh token rotates.
    await new Promise((r) => setTimeout(r, (ACCESS_TTL + 1.5) * 1000));
    expect(await callOk(client, "whoami")).toMatchObject({ tenant: "acme" });
    expect(provider.saved!.refresh_token).not.toBe(firstRefresh);

    // Revocation (RFC 7009): the refresh token and the access token stop working at once.
    const access = provider.saved!.access_token;
    const revoked = await fetch(`${base}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: provider.saved!.refresh_token!, client_id: provider.info!.client_id }).toString(),
    });
    expect(revoked.status).toBe(200);
    expect((await mcpStatus(access)).status).toBe(401);
    const refreshed = await token({ grant_type: "refresh_token", refresh_token: provider.saved!.refresh_token!, client_id: provider.info!.client_id });
    expect(refreshed).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    await client.close();
  });

  test("a person in several tenants picks one on the consent page; the token is bound to it and to their level there", async () => {
    const { client_id } = await register();
    const { challenge } = pkce();
    const page = await signIn(authorizeUrl(client_id, challenge), ANN, PASSWORD, { decision: "none", tenant: "x" });
    expect(page.location?.searchParams.get("error")).toBe("access_denied");
    const t = await tokensFor(ANN, { tenant: "globex" });
    const client = await mcpWith(t.access_token);
    expect(await callOk(client, "whoami")).toMatchObject({ tenant: "globex", access_level: "viewer" });
    const q = await client.callTool({ name: "query", arguments: { sql: "select count(*) from acme_sales.orders" } });
    expect(q.isError).toBe(true);
    expect(textOf(q)).toMatch(/permission denied|does not exist/);
    await client.close();
  });
});

describe("refused", () => {
  test("a wrong PKCE verifier", async () => {
    const { client_id } = await register();
    const { challenge } = pkce();
    const done = await signIn(authorizeUrl(client_id, challenge), ANN, PASSWORD, { tenant: "acme" });
    const t = await token({ grant_type: "authorization_code", code: done.location!.searchParams.get("code")!, code_verifier: pkce().verifier, client_id, redirect_uri: REDIRECT });
    expect(t).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
  });

  test("a reused code: refused, and the tokens the first use gave are revoked", async () => {
    const t = await tokensFor(ANN, { tenant: "acme" });
    expect((await mcpStatus(t.access_token)).status).toBe(200);
    const again = await token({ grant_type: "authorization_code", code: t.code, code_verifier: t.verifier, client_id: t.client_id, redirect_uri: REDIRECT });
    expect(again).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect((await mcpStatus(t.access_token)).status).toBe(401);
    const r = await token({ grant_type: "refresh_token", refresh_token: t.refresh_token!, client_id: t.client_id });
    expect(r.body.error).toBe("invalid_grant");
  });

  test("a reused refresh token revokes the grant (rotation with reuse detection)", async () => {
    const t = await tokensFor(ANN, { tenant: "acme" });
    const next = await token({ grant_type: "refresh_token", refresh_token: t.refresh_token!, client_id: t.client_id });
    expect(next.status).toBe(200);
    const replay = await token({ grant_type: "refresh_token", refresh_token: t.refresh_token!, client_id: t.client_id });
    expect(replay.body.error).toBe("invalid_grant");
    expect((await mcpStatus(next.body.access_token!)).status).toBe(401);
  });

  test("a redirect URI that was not registered: an error page, never a redirect", async () => {
    const { client_id } = await register();
    const u = authorizeUrl(client_id, pkce().challenge, { redirect_uri: "https://attacker.example/steal" });
    const res = await fetch(u, { redirect: "manual" });
    expect(res.status).toBe(400);
    expect(res.headers.get("location")).toBeNull();
    expect(await res.text()).toMatch(/Unregistered redirect_uri/);
    const unknown = await fetch(authorizeUrl("no-such-client", pkce().challenge), { redirect: "manual" });
    expect(unknown.status).toBe(400);
  });

  test("an expired access token", { timeout: 15_000 }, async () => {
    const t = await tokensFor(BOB);
    expect((await mcpStatus(t.access_token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, (ACCESS_TTL + 1.5) * 1000));
    const s = await mcpStatus(t.access_token);
    expect(s.status).toBe(401);
    expect(s.wwwAuthenticate).toMatch(/invalid_token/);
  });

  test("a token for another resource (RFC 8707), and a resource this server does not serve", async () => {
    const t = await tokensFor(BOB, { resource: `${base}/graphql` });
    const s = await mcpStatus(t.access_token);
    expect(s.status).toBe(401);
    expect(s.wwwAuthenticate).toMatch(/issued for .*\/graphql/);
    const gql = await fetch(`${base}/graphql`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ query: "{ whoami { tenant principal authMethod } }" }),
    });
    expect((await gql.json()).data.whoami).toMatchObject({ tenant: "acme", principal: BOB, authMethod: "oauth" });
    const { client_id } = await register();
    const foreign = await fetch(authorizeUrl(client_id, pkce().challenge, { resource: "https://elsewhere.example/mcp" }), { redirect: "manual" });
    expect(foreign.status).toBe(302);
    expect(new URL(foreign.headers.get("location")!).searchParams.get("error")).toBe("invalid_target");
  });

  test("another tenant: a person cannot pick a tenant they do not belong to, even by editing the form", async () => {
    const { client_id } = await register();
    const done = await signIn(authorizeUrl(client_id, pkce().challenge), BOB, PASSWORD, { tenant: "globex" });
    expect(done.status).toBe(400);
    expect(done.html).toMatch(/Pick one of the tenants/);
  });

  test("the login form without its cookie (CSRF), and brute force: slowed after 5 failures from one address", async () => {
    const { client_id } = await register();
    const noCookie = await signIn(authorizeUrl(client_id, pkce().challenge), BOB, PASSWORD, { dropCookie: true });
    expect(noCookie.status).toBe(403);
    const victim = "carol@acme.test";
    await db.admin.query("select * from sextant_private.upsert_user($1, $2, null, 'acme', 'viewer')", [victim, await hashPassword(PASSWORD)]);
    for (let i = 0; i < 5; i++) {
      const bad = await signIn(authorizeUrl(client_id, pkce().challenge), victim, "wrong password " + i);
      expect(bad.status).toBe(401);
      expect(bad.html).toMatch(/not right/);
    }
    const locked = await signIn(authorizeUrl(client_id, pkce().challenge), victim, PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.html).toMatch(/Too many failed sign-ins for this e-mail from here\. Wait \d+ seconds/);
    const unknown = await signIn(authorizeUrl(client_id, pkce().challenge), "nobody@acme.test", PASSWORD);
    expect(unknown.status).toBe(401);
  });

  test("a disabled person's tokens stop working at once", async () => {
    const dave = "dave@acme.test";
    await db.admin.query("select * from sextant_private.upsert_user($1, $2, null, 'acme', 'viewer')", [dave, await hashPassword(PASSWORD)]);
    const t = await tokensFor(dave);
    expect((await mcpStatus(t.access_token)).status).toBe(200);
    await db.admin.query("update sextant_private.users set disabled_at = now() where email = $1", [dave]);
    await new Promise((r) => setTimeout(r, 300));
    expect((await mcpStatus(t.access_token)).status).toBe(401);
  });

  test("a forged or foreign token: signed by another key, or with alg none", async () => {
    const t = await tokensFor(BOB);
    const [h, p] = t.access_token.split(".");
    expect((await mcpStatus(`${h}.${p}.AAAA`)).status).toBe(401);
    const none = Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt" })).toString("base64url");
    expect((await mcpStatus(`${none}.${p}.`)).status).toBe(401);
  });
});

describe("grants: listed and revoked by the person and by tenant admins", () => {
  const gql = async (accessToken: string, query: string) => {
    const res = await fetch(`${base}/graphql`, { method: "POST", headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" }, body: JSON.stringify({ query }) });
    return (await res.json()) as { data?: any; errors?: { message: string }[] };
  };

  test("GraphQL: a person sees and revokes their own grants; an admin sees the tenant's; the CLI too", { timeout: 120_000 }, async () => {
    const bobApp = await tokensFor(BOB, { resource: `${base}/graphql` });
    const annApp = await tokensFor(ANN, { tenant: "acme", resource: `${base}/graphql` });
    const mine = await gql(bobApp.access_token, "{ listOauthGrants { nodes { id principal clientName revokedAt } } }");
    expect(mine.errors).toBeUndefined();
    const principals = new Set(mine.data.listOauthGrants.nodes.map((n: { principal: string }) => n.principal));
    expect([...principals]).toEqual([BOB]);
    // Bob cannot revoke Ann's grant.
    const annGrant = (await db.admin.query("select id from sextant.oauth_grants where principal = $1 order by id desc limit 1", [ANN])).rows[0].id;
    const denied = await gql(bobApp.access_token, `mutation { revokeOauthGrant(input: { grantId: "${annGrant}" }) { result { id } } }`);
    expect(denied.errors?.[0]?.message).toMatch(/not yours to revoke/);
    expect((await mcpStatus(annApp.access_token)).status).toBe(401); // (graphql token on /mcp, for the record)

    const adminToken = (await db.admin.query("select sextant_private.create_api_token('acme', 'acme-admin', 'admin', null) as t")).rows[0].t;
    const all = await gql(adminToken, "{ listOauthGrants { nodes { principal } } }");
    const seen = all.data.listOauthGrants.nodes.map((n: { principal: string }) => n.principal);
    expect(seen).toEqual(expect.arrayContaining([ANN, BOB]));
    const byAdmin = await gql(adminToken, `mutation { revokeOauthGrant(input: { grantId: "${annGrant}" }) { result { revokedAt revokedReason } } }`);
    expect(byAdmin.data.revokeOauthGrant.result.revokedReason).toMatch(/revoked by acme-admin/);
    const annGql = await gql(annApp.access_token, "{ whoami { tenant } }");
    expect(annGql.errors?.[0]?.message ?? JSON.stringify(annGql)).toMatch(/revoked|401|invalid/i);

    const bobGrant = (await db.admin.query("select id from sextant.oauth_grants where principal = $1 and revoked_at is null order by id desc limit 1", [BOB])).rows[0].id;
    const own = await gql(bobApp.access_token, `mutation { revokeOauthGrant(input: { grantId: "${bobGrant}" }) { result { revokedAt } } }`);
    expect(own.data.revokeOauthGrant.result.revokedAt).toBeTruthy();

    // psql door, across tenants: a globex admin neither sees nor revokes acme's grants.
    const c = await db.auth.connect();
    try {
      await c.query("begin");
      await c.query("select set_config('role', 'sextant_t_globex__admin', true)");
      const globexSees = (await c.query("select principal from sextant.list_oauth_grants()")).rows.map((r) => r.principal);
      expect(globexSees).not.toContain(BOB);
      await expect(c.query("select sextant.revoke_oauth_grant($1)", [bobGrant])).rejects.toMatchObject({ code: "SX404" });
    } finally {
      await c.query("rollback");
      c.release();
    }

    const env = { DATABASE_URL: db.adminUrl };
    const listed = await runCli(["oauth", "grants", "--tenant", "acme"], env);
    expect(listed.stdout).toMatch(new RegExp(`${BOB.replace(".", "\\.")}.*manual client.*revoked`));
    const created = await runCli(["user", "create", "--tenant", "globex", "--email", "Eve@Globex.test", "--role", "analyst"], env);
    expect(created.stdout).toMatch(/^created eve@globex.test \(analyst in globex\)\npassword: \S{20}\n$/);
    const users = await runCli(["user", "list", "--tenant", "globex"], env);
    expect(users.stdout).toMatch(/eve@globex\.test\s+globex\s+analyst/);
    const rotated = await runCli(["oauth", "rotate-key"], env);
    expect(rotated.stdout).toMatch(/^new signing key \S+/);
    // Tokens signed with the retired key still verify (for a day); new ones use the new key.
    const after = await tokensFor(BOB);
    expect((await mcpStatus(after.access_token)).status).toBe(200);
    const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json();
    expect(jwks.keys.length).toBe(2);
  });
});

describe("sign-in through an upstream OpenID Connect provider", () => {
  test("the provider proves the e-mail; the person must exist in Sextant; state is checked", { timeout: 30_000 }, async () => {
    const idp = await startFakeOidc({ clientId: "sextant-rp", clientSecret: "rp-secret" });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const other = await startTestServer(db, {
      PORT: String(port), SEXTANT_PUBLIC_URL: url, SEXTANT_OIDC_ISSUER: idp.issuer, SEXTANT_OIDC_CLIENT_ID: "sextant-rp",
      SEXTANT_OIDC_CLIENT_SECRET: "rp-secret", SEXTANT_OIDC_NAME: "Fake IdP",
    });
    try {
      const reg = await (await fetch(`${url}/register`, { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ client_name: "upstream test", redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }) })).json();
      const run = async (email: string, tamper = false) => {
        idp.state.email = email;
        const { verifier, challenge } = pkce();
        const a = new URL(`${url}/authorize`);
        for (const [k, v] of Object.entries({ response_type: "code", client_id: reg.client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: "S256", state: "s" })) a.searchParams.set(k, v);
        const login = await fetch(a, { redirect: "manual" });
        const html = await login.text();
        expect(html).toContain("Sign in with Fake IdP");
        const csrfCookie = login.headers.get("set-cookie")!.split(";")[0]!;
        const field = (n: string, h: string) => new RegExp(`name="${n}" value="([^"]*)"`).exec(h)![1]!;
        const go = await fetch(`${url}/oauth/upstream`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", cookie: csrfCookie },
          body: new URLSearchParams({ ticket: field("ticket", html), csrf: field("csrf", html) }).toString() });
        expect(go.status).toBe(303);
        const upCookie = go.headers.get("set-cookie")!.split(";")[0]!;
        const atIdp = await fetch(go.headers.get("location")!, { redirect: "manual" });
        if (!atIdp.headers.get("location")) throw new Error(`idp: ${atIdp.status} ${await atIdp.text()} from ${go.headers.get("location")}`);
        const callback = new URL(atIdp.headers.get("location")!);
        if (tamper) callback.searchParams.set("state", "forged");
        const back = await fetch(callback, { redirect: "manual", headers: { cookie: upCookie } });
        return { back, html: await back.text(), verifier, client_id: reg.client_id as string };
      };
      const ok = await run(ANN);
      expect(ok.back.status).toBe(200);
      expect(ok.html).toContain("Signed in as <strong>ann@acme.test</strong>");
      const consentCookie = ok.back.headers.getSetCookie().find((c) => c.startsWith("sx_csrf="))!.split(";")[0]!;
      const field = (n: string) => new RegExp(`name="${n}" value="([^"]*)"`).exec(ok.html)![1]!;
      const consent = await fetch(`${url}/oauth/consent`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", cookie: consentCookie },
        body: new URLSearchParams({ ticket: field("ticket"), csrf: field("csrf"), decision: "allow", tenant: "acme" }).toString() });
      const code = new URL(consent.headers.get("location")!).searchParams.get("code")!;
      const t = await fetch(`${url}/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "authorization_code", code, code_verifier: ok.verifier, client_id: ok.client_id, redirect_uri: REDIRECT }).toString() });
      const access = ((await t.json()) as { access_token: string }).access_token;
      const res = await fetch(`${url}/graphql`, { method: "POST", headers: { authorization: `Bearer ${access}`, "content-type": "application/json" }, body: "{}" });
      expect(res.status).toBe(401); // the token is for /mcp, so /graphql refuses it (RFC 8707)
      const whoami = await fetch(`${url}/mcp`, { method: "POST", headers: { authorization: `Bearer ${access}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } }) });
      expect(whoami.status).toBe(200);

      const stranger = await run("stranger@elsewhere.test");
      expect(stranger.back.status).toBe(403);
      expect(stranger.html).toMatch(/has no Sextant account/);
      const forged = await run(ANN, true);
      expect(forged.back.status).toBe(403);
      // Verified means email_verified: true. A missing claim, the string "false" or false is no
      // proof that the person at the provider owns ann's address.
      for (const claim of ["omit", "false", false, "true", 1]) {
        idp.state.emailVerified = claim;
        const unverified = await run(ANN);
        expect(unverified.back.status, `email_verified ${JSON.stringify(claim)}`).toBe(403);
        expect(unverified.html).toContain("did not give a verified e-mail");
        expect(unverified.html).not.toContain("Signed in as");
      }
      idp.state.emailVerified = undefined;
      // Lower-casing would fold the Kelvin sign into k; only ASCII addresses are matched.
      await db.admin.query("insert into sextant_private.users (email, display_name) values ('kim@acme.test', 'Kim') on conflict do nothing");
      const kelvin = await run("\u212Aim@acme.test");
      expect(kelvin.back.status).toBe(403);
      expect(kelvin.html).toContain("only ASCII addresses");
      const upper = await run("ANN@ACME.TEST");
      expect(upper.back.status).toBe(200);
      expect(upper.html).toContain("Signed in as <strong>ann@acme.test</strong>");
      // The provider's token endpoint down at the callback: a 502 page that says so, no consent.
      idp.state.unavailable = "token";
      const down = await run(ANN);
      idp.state.unavailable = undefined;
      expect(down.back.status).toBe(502);
      expect(down.html).toContain("Fake IdP cannot be reached right now");
      expect(down.html).not.toContain("Signed in as");
    } finally {
      await other.close();
      await idp.close();
    }
  });
});
