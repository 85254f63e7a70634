/** Sextant's sign-in and consent pages: plain, accessible HTML, no scripts, no external assets. */

const esc = (s: unknown) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2430; }
  main { max-width: 26rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002; }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; }
  label { display: block; font-weight: 600; margin-top: 1rem; }
  input, select { width: 100%; box-sizing: border-box; padding: .6rem; font: inherit; border: 1px solid #8a94a6; border-radius: 4px; margin-top: .25rem; }
  input:focus, select:focus, button:focus { outline: 3px solid #2f6fde; outline-offset: 1px; }
  button { margin-top: 1.5rem; padding: .6rem 1.2rem; font: inherit; border-radius: 4px; border: 1px solid #1d4fa8; background: #2f6fde; color: #fff; cursor: pointer; }
  button.secondary { background: #fff; color: #1d4fa8; margin-left: .5rem; }
  .error { background: #fde8e8; border: 1px solid #c53030; color: #7b1d1d; padding: .6rem; border-radius: 4px; }
  .muted { color: #4a5568; font-size: .9rem; }
  dl { margin: 1rem 0; } dt { font-weight: 600; } dd { margin: 0 0 .5rem; }
  ul { padding-left: 1.2rem; }`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Sextant</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

export interface ClientView {
  name: string;
  redirectHost: string;
}

export function loginPage(opts: { client: ClientView; ticket: string; csrf: string; email?: string; error?: string; upstream?: string }): string {
  return page("Sign in", `
<h1>Sign in to Sextant</h1>
<p><strong>${esc(opts.client.name)}</strong> wants to use Sextant on your behalf. It will send you back to <strong>${esc(opts.client.redirectHost)}</strong>.</p>
${opts.error ? `<p class="error" role="alert" id="error">${esc(opts.error)}</p>` : ""}
<form method="post" action="/oauth/login">
  <input type="hidden" name="ticket" value="${esc(opts.ticket)}">
  <input type="hidden" name="csrf" value="${esc(opts.csrf)}">
  <label for="email">E-mail</label>
  <input id="email" name="email" type="email" autocomplete="username" required value="${esc(opts.email)}"${opts.error ? ' aria-describedby="error"' : ""} autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>${opts.upstream ? `
<form method="post" action="/oauth/upstream">
  <input type="hidden" name="ticket" value="${esc(opts.ticket)}">
  <input type="hidden" name="csrf" value="${esc(opts.csrf)}">
  <p class="muted">or</p>
  <button type="submit" class="secondary" style="margin:0">Sign in with ${esc(opts.upstream)}</button>
</form>` : ""}`);
}

const LEVEL_TEXT: Record<string, string> = {
  viewer: "read the tenant's schemas and dbt docs and run read-only queries",
  analyst: "do everything a viewer can, and record learnings, provision schemas and run pipelines",
  admin: "do everything an analyst can, and manage the tenant's pipelines, notes and connected apps",
};

export function consentPage(opts: {
  client: ClientView;
  email: string;
  ticket: string;
  csrf: string;
  tenants: { tenant: string; name: string; access_level: string }[];
  resource: string;
}): string {
  const one = opts.tenants.length === 1 ? opts.tenants[0]! : undefined;
  const tenantField = one
    ? `<dt>Tenant</dt><dd>${esc(one.name)} (${esc(one.tenant)})<input type="hidden" name="tenant" value="${esc(one.tenant)}"></dd>`
    : `<dt><label for="tenant" style="margin:0">Tenant</label></dt><dd><select id="tenant" name="tenant" required>
${opts.tenants.map((t) => `<option value="${esc(t.tenant)}">${esc(t.name)} (${esc(t.tenant)}, ${esc(t.access_level)})</option>`).join("\n")}
</select></dd>`;
  return page("Allow access", `
<h1>Allow ${esc(opts.client.name)}?</h1>
<p>Signed in as <strong>${esc(opts.email)}</strong>.</p>
<form method="post" action="/oauth/consent">
  <input type="hidden" name="ticket" value="${esc(opts.ticket)}">
  <input type="hidden" name="csrf" value="${esc(opts.csrf)}">
  <dl>
    <dt>App</dt><dd>${esc(opts.client.name)}, returning to <strong>${esc(opts.client.redirectHost)}</strong></dd>
    ${tenantField}
    <dt>Access</dt><dd>Your role in the tenant${one ? ` (${esc(one.access_level)})` : ""}: it may ${esc(LEVEL_TEXT[one?.access_level ?? "viewer"])}${one ? "" : " (or more, as your role in the tenant you pick allows)"}.</dd>
    <dt>Where</dt><dd>${esc(opts.resource)}</dd>
  </dl>
  <p class="muted">You can revoke this at any time (connected apps, or ask a tenant admin).</p>
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`);
}

export function messagePage(title: string, message: string): string {
  return page(title, `<h1>${esc(title)}</h1><p class="error" role="alert">${esc(message)}</p>`);
}
