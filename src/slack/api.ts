import { SextantError } from "../db/errors.ts";
import type { SlackSettings } from "../ask/settings.ts";

const TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 256_000;

/**
 * Where a slash command's response_url may point: https on slack.com or one of its subdomains
 * (hooks.slack.com), or the host of the configured Slack API base (tests' stand-in). Nothing
 * else: the URL arrives in a request body, and following it anywhere would let a forged or
 * misrouted command make the server call internal addresses (SSRF).
 */
export function allowedResponseUrl(raw: unknown, apiBase: string): URL | undefined {
  if (typeof raw !== "string" || raw.length > 2000) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.username || url.password) return undefined;
  const base = new URL(apiBase);
  if (url.origin === base.origin) return url;
  if (url.protocol === "https:" && (url.hostname === "slack.com" || url.hostname.endsWith(".slack.com")) && url.port === "") return url;
  return undefined;
}

async function post(url: string, body: unknown, token?: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
    redirect: "error",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  if (text.length > MAX_RESPONSE_BYTES) throw new SextantError("SX502", "Slack answered more than expected");
  if (!res.ok) throw new SextantError("SX502", `Slack answered HTTP ${res.status}`);
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { ok: text.trim() === "ok" };
  }
}

/** The few Slack Web API calls the app makes, with the bot token, against the configured base. */
export function slackApi(s: SlackSettings) {
  const call = async (method: string, body: Record<string, unknown>) => {
    if (!s.botToken) throw new SextantError("SX404", "SEXTANT_SLACK_BOT_TOKEN is not set, so Sextant cannot post in Slack");
    const answer = await post(`${s.apiBase}/${method}`, body, s.botToken);
    if (answer.ok !== true) throw new SextantError("SX502", `Slack refused ${method}: ${String(answer.error ?? "unknown error").slice(0, 100)}`);
    return answer;
  };
  return {
    /** Posts in a thread; returns the message's ts (for updates). */
    async postMessage(channel: string, threadTs: string, text: string): Promise<string> {
      const answer = await call("chat.postMessage", { channel, thread_ts: threadTs, text, unfurl_links: false, unfurl_media: false });
      return String(answer.ts);
    },
    async update(channel: string, ts: string, text: string): Promise<void> {
      await call("chat.update", { channel, ts, text });
    },
    /** Answers a slash command through its response_url (checked by allowedResponseUrl). */
    async respond(url: URL, text: string, inChannel: boolean): Promise<void> {
      await post(url.toString(), { response_type: inChannel ? "in_channel" : "ephemeral", replace_original: false, text });
    },
  };
}
export type SlackApi = ReturnType<typeof slackApi>;
