/** The console's JSON API (/console/api): every call carries the session's CSRF token. */
export interface Session {
  email: string;
  display_name: string | null;
  tenant: string | null;
  access_level: "viewer" | "analyst" | "admin" | null;
  tenants: { tenant: string; name: string; access_level: string }[];
  csrf: string;
  expires_at: string;
}

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string, public hint?: string) {
    super(message);
  }
}

let csrf = "";
export const setCsrf = (token: string) => void (csrf = token);
let onSignedOut: () => void = () => {};
export const whenSignedOut = (fn: () => void) => void (onSignedOut = fn);

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`/console/api${path}`, {
    method,
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const json = (await res.json().catch(() => ({}))) as { code?: string; message?: string; hint?: string };
  if (!res.ok) {
    if (res.status === 401 && path !== "/login" && path !== "/session") onSignedOut();
    throw new ApiError(res.status, json.code ?? `HTTP ${res.status}`, json.message ?? res.statusText, json.hint);
  }
  return json as T;
}

export const getSession = () => request<Session>("GET", "/session");
export const login = (email: string, password: string) => request<Session>("POST", "/login", { email, password });
/** How people may sign in here: the upstream OpenID provider's name when one is configured. */
export const signInOptions = () => request<{ upstream: string | null }>("GET", "/sign-in");
/** Starts the upstream sign-in; the browser then goes to the provider at the URL returned. */
export const startUpstream = () => request<{ url: string }>("POST", "/upstream", {});
export const pickTenant = (tenant: string) => request<{ tenant: string }>("POST", "/tenant", { tenant });
export const logout = () => request<unknown>("POST", "/logout", {});

/** An MCP tool, as the person (the same call an agent makes); returns its structuredContent. */
export async function tool<T = Record<string, unknown>>(name: string, input: Record<string, unknown> = {}): Promise<T> {
  return (await request<{ data: T }>("POST", `/tool/${encodeURIComponent(name)}`, { input })).data;
}

/** A console operation (a SQL function of schema sextant, as the person). */
export async function op<T = unknown>(name: string, input: Record<string, unknown> = {}): Promise<T> {
  return (await request<{ data: T }>("POST", `/op/${encodeURIComponent(name)}`, { input })).data;
}

export interface UploadResult {
  project: string;
  counts: Record<string, number>;
  ms: number;
  embeddings?: unknown;
}

/**
 * dbt artifacts to POST /console/api/dbt/upload (the server's POST /dbt/upload handler, as the
 * person): XMLHttpRequest, since fetch reports no upload progress. `onSent` gets bytes sent and total.
 */
export function uploadDbt(file: File, project: string, onSent: (sent: number, total: number) => void): Promise<UploadResult> {
  const type = /\.zip$/i.test(file.name) ? "application/zip" : /\.gz$/i.test(file.name) ? "application/gzip" : "application/json";
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/console/api/dbt/upload${project ? `?project=${encodeURIComponent(project)}` : ""}`);
    xhr.setRequestHeader("content-type", type);
    xhr.setRequestHeader("x-csrf-token", csrf);
    xhr.upload.onprogress = (e) => onSent(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload did not reach the server"));
    xhr.onload = () => {
      let json: { code?: string; message?: string; hint?: string } = {};
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: the status says enough
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(json as UploadResult);
      if (xhr.status === 401) onSignedOut();
      reject(new ApiError(xhr.status, json.code ?? `HTTP ${xhr.status}`, json.message ?? xhr.statusText, json.hint));
    };
    xhr.send(file);
  });
}
