import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { beforeAll, describe, expect, test } from "vitest";
import { hashPassword } from "../src/oauth/password.ts";
import { callOk } from "./helpers/mcpClient.ts";
import { MemoryOAuthClient, signIn } from "./helpers/oauth.ts";
import { freePort } from "./helpers/ports.ts";
import { useTestServer } from "./helpers/setup.ts";

// The default public URL is http://localhost:PORT; a client given http://127.0.0.1:PORT/mcp
// (mcp-remote checks the advertised resource against the URL it was given) must see that name.

let port: number;
const { db, server } = useTestServer(async () => {
  port = await freePort();
  return { PORT: String(port) };
});
const ANN = "ann.alias@example.com";
const PASSWORD = "correct horse battery staple";

beforeAll(async () => {
  await db.admin.query("select * from sextant_private.upsert_user($1, $2, 'Ann', 'acme', 'analyst')", [ANN, await hashPassword(PASSWORD)]);
});

describe("discovery answers in the loopback name the client used", () => {
  test("protected-resource and authorization-server metadata, and the 401's pointer, per name; other Host headers get the public URL", async () => {
    expect(server.config.publicUrl).toBe(`http://localhost:${port}`);
    for (const host of ["127.0.0.1", "localhost"]) {
      const base = `http://${host}:${port}`;
      const prm = (await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
      expect(prm).toMatchObject({ resource: `${base}/mcp`, authorization_servers: [`${base}/`] });
      const as = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
      expect(as).toMatchObject({
        issuer: `${base}/`, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`,
        authorization_response_iss_parameter_supported: true,
      });
      const denied = await fetch(`${base}/mcp`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(denied.status).toBe(401);
      expect(denied.headers.get("www-authenticate")).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`);
    }
    const { request } = await import("node:http");
    const foreign = await new Promise<string>((resolve, reject) => {
      request(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`, { headers: { host: `evil.example:${port}` } }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve(body));
      }).on("error", reject).end();
    });
    expect(JSON.parse(foreign)).toMatchObject({ resource: `http://localhost:${port}/mcp` });
  });

  test("the SDK client's whole OAuth flow against http://127.0.0.1:PORT/mcp: resource, iss and the token all line up", { timeout: 30_000 }, async () => {
    const base = `http://127.0.0.1:${port}`;
    const provider = new MemoryOAuthClient("mcp-remote (test)");
    const first = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider });
    await expect(new Client({ name: "t", version: "1" }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.authUrl?.origin).toBe(base);
    expect(provider.authUrl?.searchParams.get("resource")).toBe(`${base}/mcp`);
    const done = await signIn(provider.authUrl!, ANN, PASSWORD, { tenant: "acme" });
    expect(done.status).toBe(303);
    expect(done.location!.searchParams.get("iss")).toBe(`${base}/`); // RFC 9207: the issuer it discovered
    await first.finishAuth(done.location!.searchParams.get("code")!);
    // One resource whatever the name: the token works at both loopback names.
    for (const url of [`${base}/mcp`, `http://localhost:${port}/mcp`]) {
      const client = new Client({ name: "t", version: "1" });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
      expect(await callOk(client, "whoami")).toMatchObject({ tenant: "acme", auth_method: "oauth", principal: ANN });
      await client.close();
    }
  });
});
