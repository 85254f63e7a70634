// Hostile corpus, OAuth and sign-in: each test is one attack class, tried through the public
// doors (psql logins, HTTP), asserting the refusal, that nothing changed (read as admin) and
// that the server still answers.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { hashPassword } from "../../src/oauth/password.ts";
import { throttleAddress } from "../../src/oauth/clientAddress.ts";
import { redirectUriProblem } from "../../src/oauth/redirectUri.ts";
import { asRole } from "../helpers/db.ts";
import { startFakeOidc } from "../helpers/fakeOidc.ts";
import { authorizeUrlAt, openLoginForm, pkce, postFrom, postLogin, REDIRECT, signIn, tokenAt } from "../helpers/oauth.ts";
import { freePort } from "../helpers/ports.ts";
import { startTestServer } from "../helpers/server.ts";
import { useTestServer } from "../helpers/setup.ts";

let base: string;
const { db } = useTestServer(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  return { PORT: String(port), SEXTANT_PUBLIC_URL: base };
});
const ANN = "ann@example.com";
const PASSWORD = "correct horse battery staple";
const LOGIN = "mallory_oauth";
const LOGIN_PASSWORD = "correct-horse-battery-staple";

beforeAll(async () => {
  await db.admin.query("select * from sextant_private.upsert_user($1, $2, 'Ann', 'acme', 'analyst')", [ANN, await hashPassword(PASSWORD)]);
});
afterAll(async () => {
  // Login roles are cluster-wide; leave none behind for other files.
  await db.admin.query(`drop owned by ${LOGIN}; drop role if exists ${LOGIN}`).catch(() => {});
});

async function healthy() {
  expect((await fetch(`${base}/health`)).status).toBe(200);
}

async function register(redirect: string) {
  const res = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "hostile", redirect_uris: [redirect], token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"], response_types: ["code"] }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

const authorizeUrl = (clientId: string, challenge: string, extra?: Record<string, string>) => authorizeUrlAt(base, clientId, challenge, extra);
const token = (fields: Record<string, string>) => tokenAt(base, fields);

/**
 * A public client registered the way the server registers one (the SDK's /register allows 20
 * registrations an hour per address, which the registration tests below use up).
 */
async function newClient(): Promise<string> {
  const client_id = `test-${Math.random().toString(36).slice(2)}`;
  await db.auth.query("select sextant_private.oauth_register_client($1, null, $2)", [client_id, JSON.stringify({
    client_name: "hostile", redirect_uris: [REDIRECT], token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"], response_types: ["code"],
  })]);
  return client_id;
}

/** Ann's tokens for a fresh client, through the whole browser flow. */
async function annTokens() {
  const client_id = await newClient();
  const { verifier, challenge } = pkce();
  const done = await signIn(authorizeUrl(client_id, challenge), ANN, PASSWORD, { tenant: "acme" });
  const t = await token({ grant_type: "authorization_code", code: done.location!.searchParams.get("code")!, code_verifier: verifier, client_id, redirect_uri: REDIRECT });
  expect(t.status).toBe(200);
  return { client_id, refresh_token: t.body.refresh_token!, access_token: t.body.access_token! };
}

describe("jwt.claims spoofing from a psql login", () => {
  let url: string;
  let annGrant: string;
  beforeAll(async () => {
    await db.admin.query("select sextant_private.create_analyst_login('acme', $1, $2)", [LOGIN, LOGIN_PASSWORD]);
    const u = new URL(db.adminUrl);
    u.username = LOGIN;
    u.password = LOGIN_PASSWORD;
    url = u.toString();
    await annTokens();
    annGrant = (await db.admin.query("select id::text from sextant.oauth_grants where principal = $1 order by id desc limit 1", [ANN])).rows[0].id;
  });

  test("a viewer-level psql login that claims to be ann sees none of her OAuth grants and cannot revoke them", async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`set jwt.claims.sub = '${ANN}'`);
      expect((await c.query("select current_setting('jwt.claims.sub') as sub")).rows[0].sub).toBe(ANN);
      expect((await c.query("select sextant.current_person() as p")).rows[0].p).toBe(LOGIN);
      expect((await c.query("select * from sextant.list_oauth_grants()")).rows).toEqual([]);
      expect((await c.query("select * from sextant.oauth_grants")).rows).toEqual([]);
      // In a read-write transaction (the login is read-only by default, which would refuse first).
      await c.query("begin read write");
      await expect(c.query("select sextant.revoke_oauth_grant($1)", [annGrant])).rejects.toMatchObject({ code: "SX404" });
      await c.query("rollback; begin read write");
      expect((await c.query("update sextant.oauth_grants set revoked_at = now() where id = $1", [annGrant])).rowCount).toBe(0);
      await c.query("commit");
      // The same through set_config, and after switching to the tenant role it belongs to.
      await c.query("select set_config('jwt.claims.sub', $1, false)", [ANN]);
      await c.query("set role sextant_t_acme");
      expect((await c.query("select * from sextant.list_oauth_grants()")).rows).toEqual([]);
      await c.query("begin read write");
      await expect(c.query("select sextant.revoke_oauth_grant($1)", [annGrant])).rejects.toMatchObject({ code: "SX404" });
      await c.query("rollback");
    } finally {
      await c.end();
    }
    const { rows } = await db.admin.query("select revoked_at from sextant.oauth_grants where id = $1", [annGrant]);
    expect(rows[0].revoked_at).toBeNull();
    await healthy();
  });

  test("inside the query runner (the server's user-SQL door without its parser) a claim set by the SQL is ignored", async () => {
    const client = await db.auth.connect();
    try {
      await client.query("begin");
      await asRole(client, "sextant_t_acme");
      await client.query("select set_config('jwt.claims.sub', 'someone-else', true)");
      const { rows } = await client.query("select * from sextant.query($1)", [
        `select set_config('jwt.claims.sub', '${ANN}', true) as s, sextant.current_person() as p, (select count(*) from sextant.oauth_grants) as n`,
      ]);
      expect(rows[0].rows[0]).toMatchObject({ s: ANN, p: null, n: 0 });
    } finally {
      await client.query("rollback");
      client.release();
    }
  });

  test("attribution (who wrote a note, asked for a run) follows the login, not the claim", async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`set jwt.claims.sub = '${ANN}'`);
      const { rows } = await c.query(
        "select (select column_default from information_schema.columns where table_schema = 'sextant' and table_name = 'learnings' and column_name = 'recorded_by') as d, sextant.current_person() as p");
      expect(rows[0]).toEqual({ d: "sextant.current_person()", p: LOGIN });
    } finally {
      await c.end();
    }
    // The server's own sessions keep the person it authenticated.
    const client = await db.auth.connect();
    try {
      await client.query("begin");
      await asRole(client, "sextant_t_acme");
      await client.query("select set_config('jwt.claims.sub', $1, true)", [ANN]);
      expect((await client.query("select sextant.current_person() as p")).rows[0].p).toBe(ANN);
    } finally {
      await client.query("rollback");
      client.release();
    }
  });
});

describe("redirect URIs at registration", () => {
  const refused = [
    "http://attacker.example/callback",
    "http://127.0.0.1.attacker.example/callback",
    "http://localhost.attacker.example/cb",
    "http://localhost:80@attacker.example/cb",
    "http://[::ffff:127.0.0.1]/cb",
    "https://user:pw@app.example/cb",
    "https://app.example/cb#frag",
    "file:///etc/passwd",
    "javascript:alert(1)//",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox",
    "ftp://app.example/cb",
    "myapp:/callback",
    "about:blank",
    "blob:https://app.example/x",
    "https:///nohost",
  ];

  test("anything but https, loopback http and reverse-DNS app schemes is refused with invalid_redirect_uri", async () => {
    // Every form against the check itself; a sample through /register (20 registrations an hour).
    for (const uri of refused) expect({ uri, problem: redirectUriProblem(uri) }).toMatchObject({ uri, problem: expect.any(String) });
    const before = (await db.admin.query("select count(*)::int as n from sextant_private.oauth_clients")).rows[0].n;
    const sample = ["http://attacker.example/callback", "http://localhost:80@attacker.example/cb", "file:///etc/passwd", "myapp:/callback",
      "https://app.example/cb#frag", "http://[::ffff:127.0.0.1]/cb", "https:///nohost", "javascript:alert(1)//"];
    for (const uri of sample) {
      const r = await register(uri);
      expect({ uri, status: r.status }).toEqual({ uri, status: 400 });
      // The SDK's own schema refuses javascript:, data: and vbscript: first.
      expect({ uri, error: r.body.error }).toEqual({ uri, error: uri.startsWith("javascript:") ? "invalid_client_metadata" : "invalid_redirect_uri" });
    }
    expect((await db.admin.query("select count(*)::int as n from sextant_private.oauth_clients")).rows[0].n).toBe(before);
    for (const uri of ["https://app.example/cb", "http://127.0.0.1:8976/cb", "http://[::1]/cb", "http://localhost:3000/callback", "com.example.app:/oauth2redirect"]) {
      expect({ uri, problem: redirectUriProblem(uri) }).toEqual({ uri, problem: undefined });
    }
    for (const uri of ["https://app.example/cb", "http://[::1]:7777/cb", "com.example.app:/oauth2redirect"]) {
      expect({ uri, status: (await register(uri)).status }).toEqual({ uri, status: 201 });
    }
    await healthy();
  });

  test("the database refuses them too, when called as the server", async () => {
    for (const uri of ["http://attacker.example/cb", "file:///etc/passwd", "javascript:alert(1)", "myapp:/cb", "http://localhost@attacker.example/"]) {
      await expect(db.auth.query("select sextant_private.oauth_register_client($1, null, $2)", [`c-${uri}`, JSON.stringify({ redirect_uris: [uri] })]))
        .rejects.toMatchObject({ code: "SX400", hint: "invalid_redirect_uri" });
    }
    await db.auth.query("select sextant_private.oauth_register_client('c-ok', null, $1)", [JSON.stringify({ redirect_uris: ["com.example.app:/cb", "https://a.example/"] })]);
  });

  test("a client registered with a bad URI before the check cannot be redirected there", async () => {
    await db.admin.query("insert into sextant_private.oauth_clients (client_id, metadata) values ('old-bad', $1)",
      [JSON.stringify({ client_name: "old", redirect_uris: ["http://attacker.example/cb"], token_endpoint_auth_method: "none" })]);
    const res = await fetch(authorizeUrl("old-bad", pkce().challenge, { redirect_uri: "http://attacker.example/cb" }), { redirect: "manual" });
    expect(res.status).toBe(400);
    expect(res.headers.get("location")).toBeNull();
    await healthy();
  });
});

describe("the OAuth definer functions", () => {
  test("run as a role that is not superuser and cannot create roles, with a fixed search_path, callable by the server's login only", async () => {
    const { rows } = await db.admin.query(`
      select p.proname, r.rolsuper, r.rolcreaterole, p.proconfig,
             has_function_privilege('sextant_tenant_reader', p.oid, 'EXECUTE') as tenant_may,
             has_function_privilege('sextant_t_acme__admin', p.oid, 'EXECUTE') as admin_may,
             has_function_privilege('sextant_authenticator', p.oid, 'EXECUTE') as server_may
      from pg_proc as p join pg_roles as r on r.oid = p.proowner
      where p.prosecdef and p.pronamespace = 'sextant_private'::regnamespace and p.proname like 'oauth\\_%'`);
    expect(rows.length).toBeGreaterThanOrEqual(14);
    for (const f of rows) {
      expect({ f: f.proname, super: f.rolsuper, createrole: f.rolcreaterole, tenant: f.tenant_may, admin: f.admin_may, server: f.server_may, config: f.proconfig })
        .toEqual({ f: f.proname, super: false, createrole: false, tenant: false, admin: false, server: true, config: ["search_path=pg_catalog, pg_temp"] });
    }
  });
});

describe("registration flood", () => {
  test("one address registers at most 20 clients an hour (counted in PostgreSQL); another address still can", { timeout: 60_000 }, async () => {
    const reg = (address: string) => postFrom(`${base}/register`, JSON.stringify({ client_name: "flood", redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }),
      { "content-type": "application/json" }, address);
    const before = (await db.admin.query("select count(*)::int as n from sextant_private.oauth_clients")).rows[0].n;
    const results = await Promise.all(Array.from({ length: 25 }, () => reg("127.0.0.9")));
    expect(results.filter((r) => r.status === 201).length).toBe(20);
    const refused = results.filter((r) => r.status === 429);
    expect(refused.length).toBe(5);
    expect(JSON.parse(refused[0]!.text)).toMatchObject({ error: "too_many_requests" });
    expect(Number(refused[0]!.retryAfter)).toBeGreaterThan(3000);
    expect((await db.admin.query("select count(*)::int as n from sextant_private.oauth_clients")).rows[0].n).toBe(before + 20);
    expect((await reg("127.0.0.10")).status).toBe(201);
    await healthy();
  });
});

describe("registrations kept forever", () => {
  test("a client registered a week ago and never used is removed at the next registration; a used one stays", async () => {
    const used = (await annTokens()).client_id;
    await db.admin.query("insert into sextant_private.oauth_clients (client_id, metadata, created_at) values ('stale', '{\"redirect_uris\": []}', now() - interval '8 days')");
    await db.admin.query("update sextant_private.oauth_clients set created_at = now() - interval '8 days' where client_id = $1", [used]);
    await newClient();
    const { rows } = await db.admin.query("select client_id from sextant_private.oauth_clients where client_id in ('stale', $1)", [used]);
    expect(rows.map((r) => r.client_id)).toEqual([used]);
  });
});

describe("refresh with the wrong resource", () => {
  test("is refused before the token rotates: the original refresh token still works and the grant stays", async () => {
    const t = await annTokens();
    const wrong = await token({ grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: t.client_id, resource: "https://elsewhere.example/mcp" });
    expect(wrong).toMatchObject({ status: 400, body: { error: "invalid_target" } });
    const other = await token({ grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: t.client_id, resource: `${base}/graphql` });
    expect(other).toMatchObject({ status: 400, body: { error: "invalid_target" } });
    const { rows } = await db.admin.query(
      "select count(*)::int as n, bool_and(t.used_at is null) as unused, bool_and(g.revoked_at is null) as live from sextant_private.oauth_refresh_tokens as t join sextant.oauth_grants as g on g.id = t.grant_id where g.client_id = $1", [t.client_id]);
    expect(rows[0]).toEqual({ n: 1, unused: true, live: true });
    const right = await token({ grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: t.client_id, resource: `${base}/mcp` });
    expect(right.status).toBe(200);
    const next = await token({ grant_type: "refresh_token", refresh_token: right.body.refresh_token!, client_id: t.client_id });
    expect(next.status).toBe(200);
    await healthy();
  });

  test("a code exchange with the wrong resource or redirect URI is refused and leaves the code usable", async () => {
    const client_id = await newClient();
    const { verifier, challenge } = pkce();
    const done = await signIn(authorizeUrl(client_id, challenge), ANN, PASSWORD, { tenant: "acme" });
    const code = done.location!.searchParams.get("code")!;
    const fields = { grant_type: "authorization_code", code, code_verifier: verifier, client_id, redirect_uri: REDIRECT };
    expect(await token({ ...fields, resource: `${base}/graphql` })).toMatchObject({ status: 400, body: { error: "invalid_target" } });
    expect(await token({ ...fields, redirect_uri: "http://127.0.0.1:9/other" })).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect((await db.admin.query("select count(*)::int as n from sextant.oauth_grants where client_id = $1", [client_id])).rows[0].n).toBe(0);
    expect((await token(fields)).status).toBe(200);
  });
});

/**
 * How many attempts the throttle may let through in a burst that took `ms`: the free ones, then
 * one after 30 s, one 60 s later, ... (the free ones alone unless password hashing on a small
 * machine spread the burst over more than 30 s).
 */
function allowedInBurst(free: number, ms: number): number {
  return free + Math.floor(Math.log2(ms / 30_000 + 1));
}

async function burst<T>(fn: () => Promise<T>): Promise<{ results: T; ms: number }> {
  const start = performance.now();
  const results = await fn();
  return { results, ms: performance.now() - start };
}

describe("racing a code or a refresh token", () => {
  test("10 parallel exchanges of one code give tokens at most once, and the replays revoke that grant", { timeout: 60_000 }, async () => {
    const client_id = await newClient();
    const { verifier, challenge } = pkce();
    const done = await signIn(authorizeUrl(client_id, challenge), ANN, PASSWORD, { tenant: "acme" });
    const code = done.location!.searchParams.get("code")!;
    const results = await Promise.all(Array.from({ length: 10 }, () =>
      token({ grant_type: "authorization_code", code, code_verifier: verifier, client_id, redirect_uri: REDIRECT })));
    expect(results.filter((r) => r.status === 200).length).toBe(1);
    expect(results.filter((r) => r.status === 400).every((r) => r.body.error === "invalid_grant")).toBe(true);
    const { rows } = await db.admin.query("select count(*)::int as n, bool_and(revoked_at is not null) as revoked from sextant.oauth_grants where client_id = $1", [client_id]);
    expect(rows[0]).toEqual({ n: 1, revoked: true });
    await healthy();
  });

  test("10 parallel refreshes with one token rotate it at most once, and the replays revoke the grant", { timeout: 60_000 }, async () => {
    const t = await annTokens();
    const results = await Promise.all(Array.from({ length: 10 }, () =>
      token({ grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: t.client_id })));
    expect(results.filter((r) => r.status === 200).length).toBe(1);
    const { rows } = await db.admin.query(
      "select count(*)::int as n, bool_and(g.revoked_at is not null) as revoked from sextant_private.oauth_refresh_tokens as r join sextant.oauth_grants as g on g.id = r.grant_id where g.client_id = $1", [t.client_id]);
    expect(rows[0]).toEqual({ n: 2, revoked: true });
    const fresh = results.find((r) => r.status === 200)!.body.refresh_token!;
    expect((await token({ grant_type: "refresh_token", refresh_token: fresh, client_id: t.client_id })).body.error).toBe("invalid_grant");
    await healthy();
  });
});

describe("forged sign-in forms", () => {
  test("a CSRF field with a non-ASCII character, or a CSRF cookie that does not percent-decode, is a forged form (403), not an error", async () => {
    const client_id = await newClient();
    const form = await openLoginForm(authorizeUrl(client_id, pkce().challenge));
    const nonAscii = await postLogin({ ...form, csrf: `\u00e9${form.csrf.slice(1)}` }, ANN, PASSWORD);
    expect(nonAscii.status).toBe(403);
    expect(nonAscii.html).toContain("Form not accepted");
    const undecodable = await postLogin({ ...form, cookie: "sx_csrf=%E0%A4%A" }, ANN, PASSWORD);
    expect(undecodable.status).toBe(403);
    expect(undecodable.html).toContain("Form not accepted");
    // The form itself is still good: the refusals took nothing from it.
    expect((await postLogin(form, ANN, PASSWORD)).status).toBe(200);
    await healthy();
  });
});

describe("a hostile upstream OpenID provider", () => {
  test("answers that never end (discovery at the start, the token endpoint at the callback) are cut off past 1 MB: a 502 page at once", { timeout: 60_000 }, async () => {
    const idp = await startFakeOidc({ clientId: "sextant-rp", clientSecret: "rp-secret" });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const other = await startTestServer(db, {
      PORT: String(port), SEXTANT_PUBLIC_URL: url, SEXTANT_OIDC_ISSUER: idp.issuer, SEXTANT_OIDC_CLIENT_ID: "sextant-rp", SEXTANT_OIDC_CLIENT_SECRET: "rp-secret", SEXTANT_OIDC_NAME: "Fake IdP",
    });
    try {
      const client_id = await newClient();
      /** The sign-in form's "Sign in with Fake IdP" button, pressed. */
      const start = async () => {
        const form = await openLoginForm(authorizeUrlAt(url, client_id, pkce().challenge));
        return fetch(`${url}/oauth/upstream`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", cookie: form.cookie },
          body: new URLSearchParams({ ticket: form.ticket, csrf: form.csrf }).toString() });
      };
      for (const where of ["discovery", "token"] as const) {
        let page: Response;
        idp.state.sentBytes = 0;
        const started = Date.now();
        if (where === "discovery") {
          idp.state.endless = "discovery";
          page = await start();
        } else {
          const go = await start();
          expect(go.status).toBe(303);
          const atIdp = await fetch(go.headers.get("location")!, { redirect: "manual" });
          idp.state.endless = "token";
          page = await fetch(atIdp.headers.get("location")!, { redirect: "manual", headers: { cookie: go.headers.get("set-cookie")!.split(";")[0]! } });
        }
        idp.state.endless = undefined;
        const html = await page.text();
        expect(page.status, where).toBe(502);
        expect(html, where).toContain("Fake IdP cannot be reached right now");
        expect(html, where).not.toMatch(/\n\s+at |node:internal|internal error/);
        expect(Date.now() - started, where).toBeLessThan(10_000);
        expect(idp.state.sentBytes, where).toBeGreaterThan(1_000_000);
        expect(idp.state.sentBytes, where).toBeLessThan(16_000_000);
      }
      expect((await fetch(`${url}/health`)).status).toBe(200);
    } finally {
      await other.close();
      await idp.close();
    }
  });
});

describe("sign-in throttle", () => {
  test("20 parallel wrong passwords: 5 are evaluated (plus one per doubling delay the burst outlasts); the person still signs in from another address", { timeout: 60_000 }, async () => {
    const victim = "vic@example.com";
    await db.admin.query("select * from sextant_private.upsert_user($1, $2, null, 'acme', 'viewer')", [victim, await hashPassword(PASSWORD)]);
    const client_id = await newClient();
    const forms = await Promise.all(Array.from({ length: 20 }, () => openLoginForm(authorizeUrl(client_id, pkce().challenge))));
    const { results, ms } = await burst(() => Promise.all(forms.map((f, i) => postLogin(f, victim, `wrong password ${i}`, "127.0.0.2"))));
    const statuses = results.map((r) => r.status);
    const evaluated = statuses.filter((s) => s === 401).length;
    expect(evaluated).toBeGreaterThan(0);
    expect(evaluated).toBeLessThanOrEqual(allowedInBurst(5, ms));
    expect(statuses.filter((s) => s === 429).length).toBe(20 - evaluated);
    expect(Number(results.find((r) => r.status === 429)!.retryAfter)).toBeGreaterThan(0);
    expect(Number(results.find((r) => r.status === 429)!.retryAfter)).toBeLessThanOrEqual(30);
    // Counted once per evaluated attempt, in PostgreSQL.
    const { rows } = await db.admin.query("select failures from sextant_private.login_throttle where kind = 'person' and email = $1 and address = '127.0.0.2'", [victim]);
    expect(rows[0].failures).toBe(evaluated);
    // The attacker's address waits (30 s after the fifth failure, doubling after each further
    // one), while the person, from their own address, signs in at once.
    const own = await postLogin(await openLoginForm(authorizeUrl(client_id, pkce().challenge)), victim, PASSWORD, "127.0.0.3");
    expect(own.status).toBe(200);
    expect(own.html).toMatch(/action="\/oauth\/consent"/);
    await healthy();
  });

  test("one address trying many e-mails (password spraying) is slowed after 30 attempts, in one parallel burst", { timeout: 60_000 }, async () => {
    const client_id = await newClient();
    const forms = await Promise.all(Array.from({ length: 40 }, () => openLoginForm(authorizeUrl(client_id, pkce().challenge))));
    const { results, ms } = await burst(() => Promise.all(forms.map((f, i) => postLogin(f, `nobody${i}@example.com`, "guess", "127.0.0.4"))));
    const evaluated = results.filter((r) => r.status === 401).length;
    expect(evaluated).toBeLessThanOrEqual(allowedInBurst(30, ms));
    expect(results.filter((r) => r.status === 429).length).toBe(40 - evaluated);
    // Ann, elsewhere, is not affected.
    const own = await postLogin(await openLoginForm(authorizeUrl(client_id, pkce().challenge)), ANN, PASSWORD, "127.0.0.5");
    expect(own.status).toBe(200);
    await healthy();
  });

  test("many addresses guessing one e-mail in parallel: 20 evaluated from unknown addresses, then slowed; the person's known address is not slowed", { timeout: 90_000 }, async () => {
    const victim = "spread@example.com";
    await db.admin.query("select * from sextant_private.upsert_user($1, $2, null, 'acme', 'viewer')", [victim, await hashPassword(PASSWORD)]);
    const client_id = await newClient();
    const open = () => openLoginForm(authorizeUrl(client_id, pkce().challenge));
    expect((await postLogin(await open(), victim, PASSWORD, "127.0.0.50")).status).toBe(200);
    const forms = await Promise.all(Array.from({ length: 26 }, open));
    const { results, ms } = await burst(() => Promise.all(forms.map((f, i) => postLogin(f, victim, `guess ${i}`, `127.0.1.${i + 1}`))));
    const evaluated = results.filter((r) => r.status === 401).length;
    expect(evaluated).toBeLessThanOrEqual(allowedInBurst(20, ms));
    expect(results.filter((r) => r.status === 429).length).toBe(26 - evaluated);
    const { rows } = await db.admin.query("select failures from sextant_private.login_throttle where kind = 'email' and email = $1", [victim]);
    expect(rows[0].failures).toBe(evaluated);
    // The person, where they signed in before, is let in at once.
    const own = await postLogin(await open(), victim, PASSWORD, "127.0.0.50");
    expect(own.status).toBe(200);
    expect(own.html).toMatch(/action="\/oauth\/consent"/);
    await healthy();
  });

  test("an IPv6 client counts by its /64 (one host cannot take a fresh address per guess); a mapped IPv4 as the IPv4", () => {
    expect(throttleAddress("2001:db8:1:2:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:1:2::/64");
    expect(throttleAddress("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(throttleAddress("2001:0DB8:0001:0002:0:0:0:9")).toBe("2001:db8:1:2::/64");
    expect(throttleAddress("2001:db8::")).toBe("2001:db8:0:0::/64");
    expect(throttleAddress("::1")).toBe("0:0:0:0::/64");
    expect(throttleAddress("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0::/64");
    expect(throttleAddress("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(throttleAddress("::ffff:203.0.113.9")).toBe("203.0.113.9");
    expect(throttleAddress("::FFFF:127.0.0.2")).toBe("127.0.0.2");
    expect(throttleAddress("198.51.100.7")).toBe("198.51.100.7");
    expect(throttleAddress(undefined)).toBe("unknown");
  });

  test("the delay doubles with each failure past the free ones, stops at 15 minutes, and an hour of quiet forgets", async () => {
    const attempt = async (email: string) => (await db.auth.query("select sextant_private.oauth_login_attempt($1, '10.9.9.9') as w", [email])).rows[0].w as number;
    const set = (email: string, failures: number, ago: string) => db.admin.query(
      "update sextant_private.login_throttle set failures = $2, last_at = clock_timestamp() - $3::interval where kind = 'person' and email = $1", [email, failures, ago]);
    expect(await attempt("x@example.com")).toBe(0);
    await set("x@example.com", 5, "0 s");
    expect(await attempt("x@example.com")).toBe(30);
    await set("x@example.com", 8, "0 s");
    expect(await attempt("x@example.com")).toBe(240);
    await set("x@example.com", 8, "239 s");
    expect(await attempt("x@example.com")).toBeLessThanOrEqual(1);
    await set("x@example.com", 60, "0 s");
    expect(await attempt("x@example.com")).toBe(900);
    await set("x@example.com", 60, "61 min");
    expect(await attempt("x@example.com")).toBe(0);
    expect((await db.admin.query("select failures from sextant_private.login_throttle where kind = 'person' and email = 'x@example.com'")).rows[0].failures).toBe(1);
    // Refused attempts are not counted: only the one allowed above was.
    await expect(db.auth.query("select sextant_private.oauth_login_attempt($1, '10.9.9.9')", ["x".repeat(400)])).rejects.toMatchObject({ code: "SX400" });
  });
});
