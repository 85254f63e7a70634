import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, getSession, login, logout, pickTenant, setCsrf, signInOptions, startUpstream, whenSignedOut, type Session } from "./api.ts";
import { AdminPage } from "./pages/admin.tsx";
import { AskPage } from "./pages/ask.tsx";
import { ExplorePage, TablePage } from "./pages/explore.tsx";
import { ModelPage, ModelsPage } from "./pages/models.tsx";
import { PipelinesPage } from "./pages/pipelines.tsx";
import { QueryPage } from "./pages/query.tsx";
import { href, useRoute } from "./router.ts";
import "./style.css";

function SignIn(props: { onSession: (s: Session) => void }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [upstream, setUpstream] = useState<string | null>(null);
  useEffect(() => void signInOptions().then((o) => setUpstream(o.upstream), () => {}), []);
  const viaUpstream = async () => {
    setBusy(true);
    try {
      location.assign((await startUpstream()).url);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    setBusy(true);
    try {
      props.onSession(await login(String(form.get("email")), String(form.get("password"))));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="card narrow" id="main">
      <h1>Sign in to Sextant</h1>
      {error ? <p class="error" role="alert" id="signin-error">{error}</p> : null}
      <form onSubmit={submit}>
        <label for="email">E-mail</label>
        <input id="email" name="email" type="email" autocomplete="username" required aria-describedby={error ? "signin-error" : undefined} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required />
        <button type="submit" disabled={busy}>Sign in</button>
      </form>
      {upstream ? (
        <section class="upstream" aria-label="Other ways to sign in">
          <p class="muted">Or use your organisation's account:</p>
          <button type="button" class="secondary" disabled={busy} onClick={viaUpstream}>Sign in with {upstream}</button>
        </section>
      ) : null}
    </main>
  );
}

function PickTenant(props: { session: Session; onPicked: () => void }) {
  const [error, setError] = useState<string>();
  const pick = async (tenant: string) => {
    try {
      await pickTenant(tenant);
      props.onPicked();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <main class="card narrow" id="main">
      <h1>Pick a tenant</h1>
      <p>Signed in as <strong>{props.session.email}</strong>. You belong to several tenants; pick the one to work in.</p>
      {error ? <p class="error" role="alert">{error}</p> : null}
      {props.session.tenants.length === 0 ? <p class="error" role="alert">Your account does not belong to any tenant yet. Ask a Sextant admin to add you.</p> : null}
      <ul class="choices">
        {props.session.tenants.map((t) => (
          <li key={t.tenant}>
            <button type="button" class="choice" onClick={() => pick(t.tenant)}>
              {t.name} <span class="muted">({t.tenant}, {t.access_level})</span>
            </button>
          </li>
        ))}
      </ul>
    </main>
  );
}

function Shell(props: { session: Session; onSignOut: () => void; onSwitch: () => void }) {
  const route = useRoute();
  const s = props.session;
  const page = route[0];
  const nav = [["explore", "Explore"], ["models", "dbt models"], ["query", "Query"], ["ask", "Ask"], ...(s.access_level !== "viewer" ? [["pipelines", "Pipelines"]] : []), ...(s.access_level === "admin" ? [["admin", "Admin"]] : [])];
  let body;
  if (page === "table") body = <TablePage schema={route[1] ?? ""} table={route[2] ?? ""} level={s.access_level ?? "viewer"} />;
  else if (page === "models") body = <ModelsPage initial={route[1] ?? ""} />;
  else if (page === "model") body = <ModelPage id={route[1] ?? ""} />;
  else if (page === "query") body = <QueryPage />;
  else if (page === "ask") body = <AskPage csrf={s.csrf} />;
  else if (page === "pipelines") body = <PipelinesPage />;
  else if (page === "admin") body = <AdminPage />;
  else body = <ExplorePage schema={route[1]} />;
  useEffect(() => void document.getElementById("main")?.focus(), [route.join("/")]);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>Skip to content</a>
      <header class="top">
        <span class="brand">Sextant</span>
        <nav aria-label="Console">
          <ul>
            {nav.map(([key, text]) => (
              <li key={key}><a href={href(key!)} aria-current={(page === key || (key === "explore" && page === "table") || (key === "models" && page === "model")) ? "page" : undefined}>{text}</a></li>
            ))}
          </ul>
        </nav>
        <span class="who">
          {s.email} · <strong>{s.tenant}</strong> ({s.access_level})
          {s.tenants.length > 1 ? <button type="button" class="link" onClick={props.onSwitch}>Switch tenant</button> : null}
          <button type="button" class="secondary" onClick={props.onSignOut}>Sign out</button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>{body}</main>
    </>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [switching, setSwitching] = useState(false);
  const refresh = async () => {
    try {
      const s = await getSession();
      setCsrf(s.csrf);
      setSession(s);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setSession(null);
      else setSession(null);
    }
  };
  useEffect(() => {
    whenSignedOut(() => setSession(null));
    void refresh();
  }, []);
  if (session === undefined) return <p class="boot">Loading…</p>;
  if (session === null) return <SignIn onSession={(s) => { setCsrf(s.csrf); setSession(s); }} />;
  if (!session.tenant || !session.access_level || switching) return <PickTenant session={session} onPicked={() => { setSwitching(false); location.hash = "#/explore"; void refresh(); }} />;
  return <Shell session={session} onSwitch={() => setSwitching(true)} onSignOut={async () => { await logout().catch(() => {}); setSession(null); }} />;
}

render(<App />, document.getElementById("app")!);
