import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { hashPassword } from "../../src/oauth/password.ts";
import { callOk, connectHttp } from "../helpers/mcpClient.ts";
import { pkce, REDIRECT, signIn } from "../helpers/oauth.ts";
import { freePort } from "../helpers/ports.ts";
import { useTestServer } from "../helpers/setup.ts";

// Client ID Metadata Documents: the client_id is a URL Sextant fetches. That fetch is an
// outbound request anyone can trigger with /authorize: bounded and address-checked like a
// pipeline source. A stand-in document server on loopback (allowed for the test by host:port).

let docs: http.Server;
let docBase: string;
let base: string;
const ANN = "ann.cimd@example.com";
const PASSWORD = "correct horse battery staple";

const documents: Record<string, (url: string) => { status?: number; body: string; delayMs?: number; headers?: Record<string, string> }> = {
  "/good.json": (url) => ({ body: JSON.stringify({ client_id: url, client_name: "CIMD test client", redirect_uris: [REDIRECT] }) }),
  "/other-id.json": () => ({ body: JSON.stringify({ client_id: "https://someone.else/doc.json", redirect_uris: [REDIRECT] }) }),
  "/huge.json": (url) => ({ body: JSON.stringify({ client_id: url, redirect_uris: [REDIRECT], pad: "x".repeat(40_000) }) }),
  "/slow.json": (url) => ({ body: JSON.stringify({ client_id: url, redirect_uris: [REDIRECT] }), delayMs: 8_000 }),
  "/redirect.json": () => ({ status: 302, body: "", headers: { location: "http://169.254.169.254/latest/meta-data" } }),
  "/bad-redirect.json": (url) => ({ body: JSON.stringify({ client_id: url, redirect_uris: ["javascript:alert(1)"] }) }),
  "/confidential.json": (url) => ({ body: JSON.stringify({ client_id: url, redirect_uris: [REDIRECT], token_endpoint_auth_method: "private_key_jwt" }) }),
  "/not-json.json": () => ({ body: "<html>hello</html>" }),
};

// The document server starts first: the server's settings allow its address.
const { db } = useTestServer(async () => {
  docs = http.createServer((req, res) => {
    const doc = documents[req.url ?? ""]?.(`${docBase}${req.url}`);
    if (!doc) return void res.writeHead(404).end();
    setTimeout(() => res.writeHead(doc.status ?? 200, { "content-type": "application/json", ...doc.headers }).end(doc.body), doc.delayMs ?? 0);
  });
  await new Promise<void>((r) => docs.listen(0, "127.0.0.1", r));
  docBase = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  return { PORT: String(port), SEXTANT_PUBLIC_URL: base, SEXTANT_SOURCE_ALLOW_HOSTS: `127.0.0.1:${(docs.address() as AddressInfo).port}` };
});
beforeAll(async () => {
  await db.admin.query("select * from sextant_private.upsert_user($1, $2, 'Ann', 'acme', 'analyst')", [ANN, await hashPassword(PASSWORD)]);
});
afterAll(async () => {
  docs?.closeAllConnections();
  await new Promise((r) => docs?.close(r));
});

function authorizeUrl(clientId: string, challenge: string) {
  const u = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries({ response_type: "code", client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: "S256", state: "s", resource: `${base}/mcp` })) {
    u.searchParams.set(k, v);
  }
  return u;
}

describe("Client ID Metadata Documents", () => {
  test("advertised; a client known only by its document's URL signs in, gets a token and calls a tool", { timeout: 30_000 }, async () => {
    const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(meta.client_id_metadata_document_supported).toBe(true);
    const clientId = `${docBase}/good.json`;
    const { verifier, challenge } = pkce();
    const done = await signIn(authorizeUrl(clientId, challenge), ANN, PASSWORD, { tenant: "acme" });
    expect(done.status, done.html.slice(0, 300)).toBe(303);
    const code = done.location!.searchParams.get("code")!;
    const res = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, code_verifier: verifier, client_id: clientId, redirect_uri: REDIRECT, resource: `${base}/mcp` }).toString(),
    });
    const tokens = (await res.json()) as { access_token: string };
    expect(res.status, JSON.stringify(tokens)).toBe(200);
    const { client } = await connectHttp(base, tokens.access_token);
    expect(await callOk(client, "whoami")).toMatchObject({ tenant: "acme", principal: ANN });
    await client.close();
  });

  test.each([
    ["another client_id in the document", () => `${docBase}/other-id.json`, /names another client_id/],
    ["a document over 16 KiB", () => `${docBase}/huge.json`, /over 16384 bytes/],
    ["a redirect (never followed)", () => `${docBase}/redirect.json`, /HTTP 302/],
    ["a javascript: redirect URI", () => `${docBase}/bad-redirect.json`, /redirect URI/],
    ["a confidential client", () => `${docBase}/confidential.json`, /public clients only/],
    ["not JSON", () => `${docBase}/not-json.json`, /not JSON/],
    ["a 404", () => `${docBase}/missing.json`, /HTTP 404/],
    ["http to a host not allowed", () => "http://example.com/client.json", /must use https/],
    ["the cloud metadata service", () => "https://169.254.169.254/latest/meta-data/client.json", /private or loopback/],
    ["Sextant's own loopback", () => `https://127.0.0.1:${new URL(base).port}/.well-known/jwks.json`, /private or loopback/],
    ["credentials in the URL", () => "https://user:pw@example.com/c.json", /credentials/],
    ["no path", () => "https://example.com/", /path/],
    ["a URL over 2,000 characters", () => `https://example.com/${"a".repeat(2100)}`, /2,000 characters/],
  ])("refused with a clear invalid_client, nothing fetched that should not be: %s", async (_what, clientId, message) => {
    const res = await fetch(authorizeUrl(clientId(), "x".repeat(43)), { redirect: "manual" });
    const body = (await res.json()) as { error: string; error_description: string };
    expect(res.status).toBe(400);
    expect(body.error).toBe("invalid_client");
    expect(body.error_description).toMatch(message);
    const stored = await db.admin.query("select count(*)::int as n from sextant_private.oauth_clients where client_id = $1", [clientId()]);
    expect(stored.rows[0].n).toBe(0);
  });

  test("a document that does not answer is given up on within about 5 s", { timeout: 20_000 }, async () => {
    const started = Date.now();
    const res = await fetch(authorizeUrl(`${docBase}/slow.json`, "x".repeat(43)), { redirect: "manual" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error_description: string }).error_description).toMatch(/within 5 seconds/);
    expect(Date.now() - started).toBeLessThan(7_000);
  });
});
