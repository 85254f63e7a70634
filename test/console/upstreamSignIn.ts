import type { Browser, Page } from "playwright-core";
import { beforeAll, describe, expect, test } from "vitest";
import type { ConsoleStack } from "../helpers/console.ts";
import type { startFakeOidc } from "../helpers/fakeOidc.ts";
import type { TestDatabase } from "../helpers/db.ts";
import { screenshot, seriousViolations } from "./browser.ts";

export type FakeOidc = Awaited<ReturnType<typeof startFakeOidc>>;
/** What the console's server is told of the stand-in provider (console.test.ts starts both). */
export const UPSTREAM_CLIENT = { clientId: "sextant-console", clientSecret: "console-secret" };
export const upstreamEnv = (idp: FakeOidc) => ({
  SEXTANT_OIDC_ISSUER: idp.issuer, SEXTANT_OIDC_CLIENT_ID: UPSTREAM_CLIENT.clientId, SEXTANT_OIDC_CLIENT_SECRET: UPSTREAM_CLIENT.clientSecret, SEXTANT_OIDC_NAME: "Acme SSO",
});

/** The console's upstream sign-in driven by hand: its memo cookie, and the provider's answer (the callback URL). */
export async function beginUpstream(base: string): Promise<{ memo: string; callback: URL }> {
  const res = await fetch(`${base}/console/api/upstream`, { method: "POST", headers: { origin: base, "content-type": "application/json" }, body: "{}" });
  expect(res.status).toBe(200);
  const memo = res.headers.getSetCookie().find((c) => c.startsWith("sx_console_up="))!.split(";")[0]!;
  expect(res.headers.getSetCookie().join()).toMatch(/HttpOnly.*SameSite=Lax|SameSite=Lax.*HttpOnly/i);
  const authorize = new URL(((await res.json()) as { url: string }).url);
  expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
  expect(authorize.searchParams.get("nonce")).toMatch(/^[\w-]{20,}$/);
  expect(authorize.searchParams.get("redirect_uri")).toBe(`${base}/console/upstream/callback`);
  const back = await fetch(authorize, { redirect: "manual" });
  return { memo, callback: new URL(back.headers.get("location")!) };
}

/** The browser's return to the console's callback, with the memo cookie (or none). */
export async function upstreamCallback(url: URL, memo: string | undefined) {
  const res = await fetch(url, { redirect: "manual", headers: memo ? { cookie: memo } : {} });
  const session = res.headers.getSetCookie().find((c) => /^sx_console=[^;]+/.test(c));
  return { status: res.status, text: await res.text(), session, location: res.headers.get("location"), cookies: res.headers.getSetCookie() };
}

/**
 * The console's sign-in through an upstream OpenID provider (the one OAuth uses; a stand-in on
 * loopback here): the same relying-party code (src/oauth/upstream.ts) and the same person
 * mapping (oauth_user_for_login), then the console's own tenant pick and session cookie. Then
 * the attacks on the callback: each ends on a refusal page and never with a session. Runs on the
 * console tests' stack (console.test.ts calls it, its server started with upstreamEnv).
 */
export function upstreamSignInSuite(stack: () => ConsoleStack, provider: () => FakeOidc): void {
  describe("Sign-in with the upstream OpenID provider", () => {
    let idp: FakeOidc;
    let db: TestDatabase;
    let base: string;
    let browser: Browser;

    beforeAll(async () => {
      idp = provider();
      ({ db, base, browser } = stack());
      // Ann has no password: the provider is her only way in. She is in two tenants.
      await db.admin.query("select * from sextant_private.upsert_user('ann@acme.test', null, 'Ann', 'acme', 'admin')");
      await db.admin.query("select * from sextant_private.upsert_user('ann@acme.test', null, null, 'globex', 'viewer')");
      await db.admin.query("select * from sextant_private.upsert_user('dis@acme.test', null, 'Dis', 'acme', 'admin')");
      await db.admin.query("update sextant_private.users set disabled_at = now() where email = 'dis@acme.test'");
    });

    const sessions = async () => Number((await db.admin.query("select count(*) from sextant_private.console_sessions")).rows[0].count);

    async function checkPage(page: Page, name: string) {
      await screenshot(page, name);
      expect(await seriousViolations(page)).toEqual([]);
    }

    test("a person signs in with the upstream provider, picks a tenant and sees the console", { timeout: 60_000 }, async () => {
      idp.state.email = "ann@acme.test";
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${base}/console`);
      const button = page.getByRole("button", { name: "Sign in with Acme SSO" });
      await button.waitFor();
      await checkPage(page, "signin-upstream");
      await button.click();
      // The provider (signing Ann in at once) sends the browser back; the callback starts the session.
      await page.getByRole("heading", { name: "Pick a tenant" }).waitFor();
      expect(page.url()).toBe(`${base}/console`);
      const cookies = await context.cookies();
      expect(cookies.find((c) => c.name === "sx_console")).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/console" });
      expect(cookies.find((c) => c.name === "sx_console_up")).toBeUndefined();
      expect(await page.textContent("main")).toContain("ann@acme.test");
      await page.getByRole("button", { name: /Acme/ }).click();
      await page.getByRole("heading", { name: "Explore" }).waitFor();
      await page.getByRole("link", { name: "acme_sales", exact: true }).waitFor();
      await page.getByText("Loading tables…").waitFor({ state: "detached" });
      await page.getByRole("link", { name: "acme_sales.orders" }).waitFor();
      expect(await page.locator("header").textContent()).toMatch(/ann@acme\.test · acme \(admin\)/);
      await checkPage(page, "upstream-explore");
      await context.close();
    });

    test("a provider identity that maps to no person (or a disabled one) ends on a refusal page, with no session", { timeout: 60_000 }, async () => {
      const before = await sessions();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      for (const email of ["nobody@elsewhere.test", "dis@acme.test"]) {
        idp.state.email = email;
        await page.goto(`${base}/console`);
        const answer = page.waitForResponse((r) => r.url().startsWith(`${base}/console/upstream/callback`));
        await page.getByRole("button", { name: "Sign in with Acme SSO" }).click();
        expect((await answer).status()).toBe(403);
        await page.getByRole("heading", { name: "No Sextant account" }).waitFor();
        expect(await page.getByRole("alert").textContent()).toContain(`${email} has no Sextant account`);
      }
      await checkPage(page, "upstream-refused");
      expect((await context.cookies()).map((c) => c.name)).not.toContain("sx_console");
      expect((await page.request.get(`${base}/console/api/session`)).status()).toBe(401);
      expect(await sessions()).toBe(before);
      await context.close();
    });

    const begin = () => beginUpstream(base);
    const callback = upstreamCallback;

    test("hostile callbacks: a wrong state, no memo, a replayed code, a wrong nonce or audience, a provider error — refused, never a session", async () => {
      idp.state.email = "ann@acme.test";
      const before = await sessions();

      // A state that is not this sign-in's (an attacker's answer planted in the victim's browser).
      const a = await begin();
      const forged = new URL(a.callback);
      forged.searchParams.set("state", "attacker-state");
      expect(await callback(forged, a.memo)).toMatchObject({ status: 403, session: undefined, text: expect.stringContaining("does not belong to this sign-in") });
      // Another sign-in's memo with this answer: its state does not match either.
      const b = await begin();
      expect(await callback(b.callback, a.memo)).toMatchObject({ status: 403, session: undefined });
      // No memo (a callback URL opened in another browser), or a forged one.
      expect(await callback(b.callback, undefined)).toMatchObject({ status: 400, session: undefined, text: expect.stringContaining("Sign-in expired") });
      expect(await callback(b.callback, "sx_console_up=eyJhbGciOiJub25lIn0.e30.")).toMatchObject({ status: 400, session: undefined });
      expect(await sessions()).toBe(before);

      // The real answer works once; replayed (memo kept by an attacker) the provider refuses the spent code.
      const c = await begin();
      const ok = await callback(c.callback, c.memo);
      expect(ok).toMatchObject({ status: 303, location: "/console" });
      expect(ok.session).toMatch(/HttpOnly/i);
      expect(await sessions()).toBe(before + 1);
      expect(await callback(c.callback, c.memo)).toMatchObject({ status: 403, session: undefined, text: expect.stringMatching(/could not confirm who you are: the OpenID provider refused the code \(invalid_grant\)/) });

      // An ID token for another sign-in (wrong nonce), or for another client (wrong audience).
      idp.state.nonce = "someone-elses-nonce";
      const d = await begin();
      expect(await callback(d.callback, d.memo)).toMatchObject({ status: 403, session: undefined, text: expect.stringContaining("nonce does not match") });
      idp.state.nonce = undefined;
      idp.state.audience = "another-client";
      const e = await begin();
      expect(await callback(e.callback, e.memo)).toMatchObject({ status: 403, session: undefined, text: expect.stringMatching(/could not confirm who you are: .*aud/) });
      idp.state.audience = undefined;

      // The provider says no; its words are shown as text.
      const f = await begin();
      const denied = new URL(f.callback);
      denied.searchParams.delete("code");
      denied.searchParams.set("error", "<b>access_denied</b>");
      const refused = await callback(denied, f.memo);
      expect(refused).toMatchObject({ status: 403, session: undefined });
      expect(refused.text).toContain("&lt;b&gt;access_denied&lt;/b&gt;");
      expect(await sessions()).toBe(before + 1);

      // Starting needs the console's own page (Origin), as every other console POST does.
      const cross = await fetch(`${base}/console/api/upstream`, { method: "POST", headers: { origin: "https://evil.example", "content-type": "application/json" }, body: "{}" });
      expect(cross.status).toBe(403);
      expect(cross.headers.getSetCookie()).toEqual([]);
    });
  });
}
