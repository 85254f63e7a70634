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
