import type { Page } from "playwright-core";
import { expect, test } from "vitest";
import { startConsoleStack } from "../helpers/console.ts";
import { startFakeOidc } from "../helpers/fakeOidc.ts";
import { useResource } from "../helpers/setup.ts";
import { screenshot, seriousViolations } from "./browser.ts";
import { beginUpstream, UPSTREAM_CLIENT, upstreamCallback, upstreamEnv } from "./upstreamSignIn.ts";

// The console's sign-in through an upstream OpenID provider that cannot be reached: down when
// the sign-in starts (discovery), answering 503 at its token endpoint or key set, silent,
// sending a body that never ends (cut off past 1 MB, or once the wait is up), or stopped between the person's sign-in there and the callback. Each ends on a plain page (or the
// sign-in page's message) that says the provider cannot be reached: a 502, no stack trace, no
// session and no memo left behind; at once, or once Sextant stops waiting for a silent provider.
// The server here also trusts the provider's e-mails (SEXTANT_OIDC_TRUST_EMAIL=1), checked while
// the provider is still up.

const idp = useResource("stand-in OpenID provider", () => startFakeOidc(UPSTREAM_CLIENT), (p) => p.close());
const stack = useResource("console stack", async () => {
  const s = await startConsoleStack({ ...upstreamEnv(idp), SEXTANT_OIDC_TRUST_EMAIL: "1" });
  // Ann has no password and one tenant: a sign-in that works goes straight to the console.
  await s.db.admin.query("select * from sextant_private.upsert_user('ann@acme.test', null, 'Ann', 'acme', 'admin')");
  return s;
}, (s) => s.close());

const sessions = async () => Number((await stack.db.admin.query("select count(*) from sextant_private.console_sessions")).rows[0].count);

/** What the person reads: the message, without a stack trace or an internal error's words. */
function expectPlainUnavailable(text: string) {
  expect(text).toContain("Acme SSO cannot be reached right now");
  expect(text).not.toMatch(/\n\s+at |node:internal|TypeError|fetch failed|ECONNREFUSED|internal error/);
}

async function expectSignedOut(page: Page) {
  expect((await page.context().cookies()).map((c) => c.name)).not.toContain("sx_console");
  expect((await page.request.get(`${stack.base}/console/api/session`)).status()).toBe(401);
}

/** A stand-in body that never ends, read by Sextant: what the provider sent (at most the cap and the sockets' buffers). */
const ENDLESS_SENT_AT_MOST = 16_000_000;

// First in the file: the discovery document is fetched once and kept once it is whole.
test("a discovery document that never ends: the start is refused with a 502 past 1 MB, no memo", async () => {
  idp.state.endless = "discovery";
  idp.state.sentBytes = 0;
  const started = Date.now();
  const res = await fetch(`${stack.base}/console/api/upstream`, { method: "POST", headers: { origin: stack.base, "content-type": "application/json" }, body: "{}" });
  idp.state.endless = undefined;
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(res.status).toBe(502);
  expect(res.headers.getSetCookie()).toEqual([]);
  expectPlainUnavailable(((await res.json()) as { message: string }).message);
  expect(idp.state.sentBytes).toBeGreaterThan(1_000_000);
  expect(idp.state.sentBytes).toBeLessThan(ENDLESS_SENT_AT_MOST);
});

test("the provider down when the sign-in starts: the sign-in page says so; no memo, no session", { timeout: 60_000 }, async () => {
  idp.state.unavailable = "all";
  const before = await sessions();
  // The start as the page's script makes it: a 502 with the console's error shape, no cookie.
  const started = Date.now();
  const res = await fetch(`${stack.base}/console/api/upstream`, { method: "POST", headers: { origin: stack.base, "content-type": "application/json" }, body: "{}" });
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(res.status).toBe(502);
  expect(res.headers.getSetCookie()).toEqual([]);
  const body = (await res.json()) as { code: string; message: string };
  expect(body.code).toBe("SX502");
  expectPlainUnavailable(body.message);

  // In the browser: the button leads back to the sign-in form with the message, still usable.
  const context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${stack.base}/console`);
  await page.getByRole("button", { name: "Sign in with Acme SSO" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  expectPlainUnavailable((await alert.textContent())!);
  expect(page.url()).toBe(`${stack.base}/console`);
  expect(await page.getByRole("button", { name: "Sign in with Acme SSO" }).isEnabled()).toBe(true);
  await screenshot(page, "upstream-unreachable-start");
  expect(await seriousViolations(page)).toEqual([]);
  await expectSignedOut(page);
  expect((await context.cookies()).map((c) => c.name)).not.toContain("sx_console_up");
  await context.close();
  expect(await sessions()).toBe(before);
  idp.state.unavailable = undefined;
});

test("the token endpoint answering 503 at the callback: a 502 page, no session, the memo gone", { timeout: 60_000 }, async () => {
  const before = await sessions();
  const context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${stack.base}/console`);
  idp.state.unavailable = "token";
  const answer = page.waitForResponse((r) => r.url().startsWith(`${stack.base}/console/upstream/callback`));
  await page.getByRole("button", { name: "Sign in with Acme SSO" }).click();
  expect((await answer).status()).toBe(502);
  await page.getByRole("heading", { name: "Sign-in unavailable" }).waitFor();
  expectPlainUnavailable((await page.getByRole("alert").textContent())!);
  expectPlainUnavailable((await page.textContent("body"))!);
  await screenshot(page, "upstream-unreachable-callback");
  expect(await seriousViolations(page)).toEqual([]);
  await expectSignedOut(page);
  expect((await context.cookies()).map((c) => c.name)).not.toContain("sx_console_up");
  await context.close();
  expect(await sessions()).toBe(before);
  idp.state.unavailable = undefined;
});

test("the key set answering 503 at the callback: a 502 page, no session", async () => {
  const before = await sessions();
  const { memo, callback } = await beginUpstream(stack.base);
  idp.state.unavailable = "jwks";
  const back = await upstreamCallback(callback, memo);
  idp.state.unavailable = undefined;
  expect(back).toMatchObject({ status: 502, session: undefined });
  expect(back.text).toContain("Sign-in unavailable");
  expectPlainUnavailable(back.text);
  expect(back.cookies.join()).toMatch(/sx_console_up=;/);
  expect(await sessions()).toBe(before);
});

for (const where of ["token", "jwks"] as const) {
  test(`a ${where === "token" ? "token endpoint" : "key set"} whose answer never ends: a 502 page past 1 MB, at once, no session`, async () => {
    const before = await sessions();
    const { memo, callback } = await beginUpstream(stack.base);
    idp.state.endless = where;
    idp.state.sentBytes = 0;
    const started = Date.now();
    const back = await upstreamCallback(callback, memo);
    idp.state.endless = undefined;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(back).toMatchObject({ status: 502, session: undefined });
    expect(back.text).toContain(`its ${where === "token" ? "token endpoint" : "key set"} sent more than 1 MB`);
    expectPlainUnavailable(back.text);
    expect(idp.state.sentBytes).toBeGreaterThan(1_000_000);
    expect(idp.state.sentBytes).toBeLessThan(ENDLESS_SENT_AT_MOST);
    expect(await sessions()).toBe(before);
  });
}

test("a token endpoint whose answer trickles on forever: a 502 page once Sextant stops waiting (10 s), no session", { timeout: 40_000 }, async () => {
  const before = await sessions();
  const { memo, callback } = await beginUpstream(stack.base);
  Object.assign(idp.state, { endless: "token", trickle: true });
  const started = Date.now();
  const back = await upstreamCallback(callback, memo);
  const waited = Date.now() - started;
  Object.assign(idp.state, { endless: undefined, trickle: undefined });
  expect(waited).toBeGreaterThanOrEqual(9_000);
  expect(waited).toBeLessThan(25_000);
  expect(back).toMatchObject({ status: 502, session: undefined });
  expect(back.text).toContain("its token endpoint did not answer in time");
  expectPlainUnavailable(back.text);
  expect(await sessions()).toBe(before);
});

test("a token endpoint that never answers: a 502 page once Sextant stops waiting (10 s), no session", { timeout: 40_000 }, async () => {
  const before = await sessions();
  const { memo, callback } = await beginUpstream(stack.base);
  idp.state.silent = true;
  const started = Date.now();
  const back = await upstreamCallback(callback, memo);
  const waited = Date.now() - started;
  idp.state.silent = undefined;
  expect(waited).toBeGreaterThanOrEqual(9_000);
  expect(waited).toBeLessThan(25_000);
  expect(back).toMatchObject({ status: 502, session: undefined });
  expect(back.text).toContain("did not answer in time");
  expectPlainUnavailable(back.text);
  expect(await sessions()).toBe(before);
});

test("SEXTANT_OIDC_TRUST_EMAIL=1: an ID token without email_verified signs in; false or \"false\" still does not", async () => {
  const before = await sessions();
  for (const claim of [false, "false"]) {
    idp.state.emailVerified = claim;
    const { memo, callback } = await beginUpstream(stack.base);
    const refused = await upstreamCallback(callback, memo);
    expect(refused, `email_verified ${JSON.stringify(claim)}`).toMatchObject({ status: 403, session: undefined });
    expect(refused.text).toContain("did not give a verified e-mail");
  }
  expect(await sessions()).toBe(before);
  idp.state.emailVerified = "omit";
  const { memo, callback } = await beginUpstream(stack.base);
  const ok = await upstreamCallback(callback, memo);
  idp.state.emailVerified = undefined;
  expect(ok).toMatchObject({ status: 303, location: "/console" });
  expect(ok.session).toMatch(/HttpOnly/i);
  expect(await sessions()).toBe(before + 1);
});

test("the provider stopped between the person's sign-in there and the callback: a 502 page at once, no session", async () => {
  const before = await sessions();
  const { memo, callback } = await beginUpstream(stack.base);
  await idp.close();
  const started = Date.now();
  const back = await upstreamCallback(callback, memo);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(back).toMatchObject({ status: 502, session: undefined });
  expect(back.text).toContain("Sign-in unavailable");
  expectPlainUnavailable(back.text);
  expect(back.cookies.join()).toMatch(/sx_console_up=;/);
  expect(await sessions()).toBe(before);
});
