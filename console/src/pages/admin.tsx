import { useState } from "preact/hooks";
import { op, tool, uploadDbt, type UploadResult } from "../api.ts";
import { cellText } from "../components/grid.tsx";
import { Problem, useLoad } from "../components/status.tsx";

type Row = Record<string, unknown>;
const t = cellText;

function Tokens() {
  const tokens = useLoad(() => op<Row[]>("list_api_tokens"), []);
  const [created, setCreated] = useState<string>();
  const [error, setError] = useState<string>();
  const create = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    setError(undefined);
    try {
      const days = String(f.get("days") ?? "");
      const r = await op<{ token: string }>("create_api_token", { name: String(f.get("name")), access_level: String(f.get("level")), expires_in_days: days ? Number(days) : undefined });
      setCreated(r.token);
      (e.target as HTMLFormElement).reset();
      tokens.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const revoke = async (prefix: string) => {
    setError(undefined);
    try {
      await op("revoke_api_token", { prefix });
      tokens.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section aria-labelledby="tokens-h">
      <h2 id="tokens-h">API tokens</h2>
      <form onSubmit={create} class="inline-form">
        <label for="token-name">For (person or agent)</label>
        <input id="token-name" name="name" required maxLength={200} />
        <label for="token-level">Access level</label>
        <select id="token-level" name="level"><option>viewer</option><option>analyst</option><option>admin</option></select>
        <label for="token-days">Expires in days (empty: never)</label>
        <input id="token-days" name="days" type="number" min={1} max={3650} />
        <button type="submit">Create token</button>
      </form>
      <Problem error={error ?? tokens.error} />
      {created ? (
        <div class="panel" role="status">
          <p><strong>New token — copy it now, it is shown only this once:</strong></p>
          <code class="token" id="new-token">{created}</code>
          <button type="button" class="secondary" onClick={() => setCreated(undefined)}>Done</button>
        </div>
      ) : null}
      <table class="list">
        <caption class="sr-only">API tokens of this tenant</caption>
        <thead><tr><th scope="col">Prefix</th><th scope="col">For</th><th scope="col">Level</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {(tokens.data ?? []).map((r) => (
            <tr key={t(r.prefix)}>
              <td><code>{t(r.prefix)}</code></td><td>{t(r.principal_name)}</td><td>{t(r.access_level)}</td><td>{t(r.status)}</td>
              <td>{t(r.created_at)}</td><td>{t(r.last_used_at)}</td>
              <td>{r.status === "active" ? <button type="button" class="danger" onClick={() => revoke(t(r.prefix))} aria-label={`Revoke token ${t(r.prefix)} of ${t(r.principal_name)}`}>Revoke</button> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Grants() {
  const grants = useLoad(() => op<Row[]>("list_oauth_grants"), []);
  const [error, setError] = useState<string>();
  const revoke = async (id: number) => {
    setError(undefined);
    try {
      await op("revoke_oauth_grant", { grant_id: id });
      grants.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section aria-labelledby="grants-h">
      <h2 id="grants-h">Connected apps (OAuth grants)</h2>
      <Problem error={error ?? grants.error} />
      {(grants.data ?? []).length === 0 ? <p class="muted">No app has been connected to this tenant.</p> : (
        <table class="list">
          <caption class="sr-only">OAuth grants of this tenant</caption>
          <thead><tr><th scope="col">App</th><th scope="col">Person</th><th scope="col">Level</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Revoked</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {(grants.data ?? []).map((g) => (
              <tr key={t(g.id)}>
                <td>{t(g.client_name ?? g.client_id)}</td><td>{t(g.principal)}</td><td>{t(g.access_level)}</td>
                <td>{t(g.created_at)}</td><td>{t(g.last_used_at)}</td><td>{t(g.revoked_at)}</td>
                <td>{g.revoked_at ? null : <button type="button" class="danger" onClick={() => revoke(Number(g.id))} aria-label={`Revoke ${t(g.client_name ?? g.client_id)} for ${t(g.principal)}`}>Revoke</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Slack users linked to people of this tenant, so they can ask in Slack (sextant.slack_people). */
function SlackPeople() {
  const people = useLoad(() => op<Row[]>("list_slack_people"), []);
  const [error, setError] = useState<string>();
  const act = async (fn: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await fn();
      people.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section aria-labelledby="slack-h">
      <h2 id="slack-h">Slack people</h2>
      <form class="inline-form" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.target as HTMLFormElement);
        void act(() => op("link_slack_person", { team_id: String(f.get("team_id") ?? ""), slack_user_id: String(f.get("slack_user_id") ?? ""), person: String(f.get("person") ?? "") }));
      }}>
        <label for="slack-team">Workspace ID</label><input id="slack-team" name="team_id" required />
        <label for="slack-user">Slack user ID</label><input id="slack-user" name="slack_user_id" required />
        <label for="slack-person">Person (e-mail)</label><input id="slack-person" name="person" required />
        <button type="submit">Link</button>
      </form>
      <Problem error={error ?? people.error} />
      {(people.data ?? []).length === 0 ? <p class="muted">No Slack user is linked to a person of this tenant.</p> : (
        <table class="list">
          <caption class="sr-only">Slack users linked to people of this tenant</caption>
          <thead><tr><th scope="col">Workspace</th><th scope="col">Slack user</th><th scope="col">Person</th><th scope="col">Linked by</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {(people.data ?? []).map((p) => (
              <tr key={`${t(p.team_id)}/${t(p.slack_user_id)}`}>
                <td>{t(p.team_id)}</td><td>{t(p.slack_user_id)}</td><td>{t(p.person)}</td><td>{t(p.linked_by)}</td>
                <td><button type="button" class="danger" onClick={() => act(() => op("unlink_slack_person", { team_id: p.team_id, slack_user_id: p.slack_user_id }))} aria-label={`Unlink ${t(p.slack_user_id)}`}>Unlink</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** dbt artifacts uploaded through the server's POST /dbt/upload handler, with the bytes sent as progress. */
function DbtUpload() {
  const [phase, setPhase] = useState<"idle" | "sending" | "loading">("idle");
  const [sent, setSent] = useState<{ sent: number; total: number }>({ sent: 0, total: 0 });
  const [result, setResult] = useState<UploadResult>();
  const [error, setError] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const f = new FormData(form);
    const file = f.get("artifacts");
    if (!(file instanceof File) || file.size === 0) return setError("Pick a file: a zip of the dbt target directory, or manifest.json (or manifest.json.gz).");
    setError(undefined);
    setResult(undefined);
    setPhase("sending");
    setSent({ sent: 0, total: file.size });
    try {
      const r = await uploadDbt(file, String(f.get("project") ?? "").trim(), (s, total) => {
        setSent({ sent: s, total });
        if (s >= total) setPhase("loading");
      });
      setResult(r);
      form.reset();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setPhase("idle");
    }
  };
  const pct = sent.total ? Math.round((sent.sent / sent.total) * 100) : 0;
  return (
    <section aria-labelledby="dbt-h">
      <h2 id="dbt-h">dbt project</h2>
      <p class="muted">Upload a zip of the dbt target directory (manifest.json, catalog.json, run_results.json) or manifest.json alone; it replaces the project's previous version.</p>
      <form class="inline-form" onSubmit={submit}>
        <label for="dbt-file">Artifacts (.zip, .json or .json.gz)</label>
        <input id="dbt-file" name="artifacts" type="file" accept=".zip,.json,.gz,application/zip,application/json,application/gzip" required />
        <label for="dbt-project">Project name (empty: from the manifest)</label>
        <input id="dbt-project" name="project" maxLength={200} />
        <button type="submit" disabled={phase !== "idle"}>Upload</button>
      </form>
      {phase !== "idle" ? (
        <div class="panel">
          <label for="dbt-progress">{phase === "sending" ? "Sending the artifacts" : "Loading the project into Sextant"}</label>
          <progress id="dbt-progress" max={100} value={phase === "sending" ? pct : undefined} />
          <p role="status">{phase === "sending" ? `Sent ${pct}% (${Math.round(sent.sent / 1024)} of ${Math.round(sent.total / 1024)} KB)` : "Sent; loading models, columns and lineage…"}</p>
        </div>
      ) : null}
      <Problem error={error} />
      {result ? (
        <div class="panel" role="status">
          <p><strong>Loaded dbt project {t(result.project)}</strong> in {Math.round(Number(result.ms))} ms (entries read: {Object.entries(result.counts).map(([k, v]) => `${k} ${v}`).join(", ")}).</p>
          <a href="#/models">Search its models</a>
        </div>
      ) : null}
    </section>
  );
}

/** People who can sign in to this tenant and their levels (sextant.list_people; levels are set by the operator). */
function People() {
  const people = useLoad(() => op<Row[]>("list_people"), []);
  return (
    <section aria-labelledby="people-h">
      <h2 id="people-h">People</h2>
      <Problem error={people.error} />
      <table class="list">
        <caption class="sr-only">People of this tenant and their access levels</caption>
        <thead><tr><th scope="col">E-mail</th><th scope="col">Name</th><th scope="col">Level</th><th scope="col">Status</th><th scope="col">Since</th></tr></thead>
        <tbody>
          {(people.data ?? []).map((p) => (
            <tr key={t(p.email)}>
              <td>{t(p.email)}</td><td>{t(p.display_name)}</td><td>{t(p.access_level)}</td><td>{p.disabled ? "disabled" : "active"}</td><td>{t(p.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Schemas the tenant provisioned, their expiry, and teardown (the teardown_schema tool, as the person). */
function Schemas() {
  const schemas = useLoad(() => op<Row[]>("list_provisioned_schemas"), []);
  const [error, setError] = useState<string>();
  const teardown = async (name: string) => {
    if (!confirm(`Drop schema ${name} and everything in it?`)) return;
    setError(undefined);
    try {
      await tool("teardown_schema", { name });
      schemas.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section aria-labelledby="schemas-h">
      <h2 id="schemas-h">Provisioned schemas</h2>
      <Problem error={error ?? schemas.error} />
      {(schemas.data ?? []).length === 0 ? <p class="muted">This tenant has provisioned no schema.</p> : (
        <table class="list">
          <caption class="sr-only">Schemas provisioned by this tenant, with their expiry</caption>
          <thead><tr><th scope="col">Schema</th><th scope="col">Expires</th><th scope="col">Tables</th><th scope="col">Pipelines</th><th scope="col">Created</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {(schemas.data ?? []).map((r) => (
              <tr key={t(r.schema_name)}>
                <td><code>{t(r.schema_name)}</code></td><td>{r.expires_at ? t(r.expires_at) : "never"}</td>
                <td class="num">{t(r.tables)}</td><td class="num">{t(r.pipelines)}</td><td>{t(r.created_at)}</td>
                <td><button type="button" class="danger" onClick={() => teardown(t(r.schema_name))} aria-label={`Tear down schema ${t(r.schema_name)}`}>Tear down</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** What the tenant and each caller used of the rate limits in the current windows (sextant.rate_limit_use). */
function RateUse() {
  const use = useLoad(() => op<Row[]>("rate_limit_use"), []);
  return (
    <section aria-labelledby="rate-h">
      <h2 id="rate-h">Rate-limit use</h2>
      <Problem error={use.error} />
      <table class="list">
        <caption class="sr-only">Calls used against the limits in the current minute, hour and day</caption>
        <thead><tr><th scope="col">Who</th><th scope="col">Window</th><th scope="col">Since</th><th scope="col">Used</th><th scope="col">Limit</th><th scope="col">Share</th></tr></thead>
        <tbody>
          {(use.data ?? []).map((r, i) => {
            const share = Number(r.cap) > 0 ? Math.min(100, Math.round((Number(r.used) / Number(r.cap)) * 100)) : 0;
            const who = r.scope === "tenant" ? "the whole tenant" : t(r.principal);
            return (
              <tr key={i}>
                <td>{who}</td><td>per {t(r.window_name)}</td><td>{t(r.window_start)}</td>
                <td class="num">{t(r.used)}</td><td class="num">{t(r.cap)}</td>
                <td><meter min={0} max={100} value={share} aria-label={`${who}: ${share}% of the ${t(r.window_name)} limit`} /> {share}%</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <button type="button" class="secondary" onClick={() => use.reload()}>Refresh</button>
    </section>
  );
}

function Audit() {
  const [filters, setFilters] = useState<{ tool?: string; outcome?: string; principal?: string }>({});
  const events = useLoad(() => op<Row[]>("audit_log", { ...filters, max_results: 100 }), [JSON.stringify(filters)]);
  return (
    <section aria-labelledby="audit-h">
      <h2 id="audit-h">Audit log</h2>
      <form class="inline-form" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.target as HTMLFormElement);
        setFilters({ tool: String(f.get("tool") || "") || undefined, outcome: String(f.get("outcome") || "") || undefined, principal: String(f.get("principal") || "") || undefined });
      }}>
        <label for="audit-tool">Tool</label><input id="audit-tool" name="tool" />
        <label for="audit-principal">Who</label><input id="audit-principal" name="principal" />
        <label for="audit-outcome">Outcome</label>
        <select id="audit-outcome" name="outcome"><option value="">any</option><option>ok</option><option>refused</option><option>error</option></select>
        <button type="submit">Filter</button>
      </form>
      <Problem error={events.error} />
      <table class="list">
        <caption class="sr-only">Audit events, newest first</caption>
        <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Tool</th><th scope="col">Outcome</th><th scope="col">Rows</th><th scope="col">ms</th><th scope="col">SQL</th></tr></thead>
        <tbody>
          {(events.data ?? []).map((r, i) => (
            <tr key={i}>
              <td>{t(r.at)}</td><td>{t(r.principal)}</td><td>{t(r.tool)}</td><td>{t(r.outcome)}{r.error_code ? ` (${t(r.error_code)})` : ""}</td>
              <td class="num">{t(r.row_count)}</td><td class="num">{t(r.duration_ms)}</td><td><code>{t(r.sql).slice(0, 200)}</code></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function AdminPage() {
  return (
    <div>
      <h1>Admin</h1>
      <Tokens />
      <DbtUpload />
      <People />
      <Schemas />
      <RateUse />
      <Grants />
      <SlackPeople />
      <Audit />
    </div>
  );
}
