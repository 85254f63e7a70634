import express, { type Express, type Request, type Response } from "express";
import type { AskDeps } from "../ask/create.ts";
import { createAskService } from "../ask/create.ts";
import type { AskEvent } from "../ask/loop.ts";
import { admitQuestion, answer, checkQuestion, type AskService } from "../ask/service.ts";
import type { SlackSettings } from "../ask/settings.ts";
import { buildPrincipal, type Principal } from "../auth/principal.ts";
import { SextantError, toPublicError } from "../db/errors.ts";
import { boundedBody } from "../http/jsonBody.ts";
import { allowedResponseUrl, slackApi, type SlackApi } from "./api.ts";
import { finalText, progressText, slackEscape } from "./format.ts";
import { verifySlackSignature } from "./verify.ts";

/** Step updates of a thread message are sent at most this often (chat.update is rate-limited). */
const UPDATE_EVERY_MS = 1000;
const ID = /^[A-Z0-9]{1,32}$/;

interface Asking {
  team: string;
  channel: string;
  user: string;
  question: string;
}

/** Slack escapes &, < and > in what people type; the question is the plain text. */
function unescapeSlack(text: string): string {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function refuse(res: Response, status: number, error: unknown): void {
  const pub = toPublicError(error);
  res.status(status).json({ code: pub.code, message: pub.message, ...(pub.hint ? { hint: pub.hint } : {}) });
}

/**
 * POST /slack/events: the Slack app's Events API (app_mention) and slash command (/ask) over
 * HTTP. Every request must carry a valid Slack signature made within five minutes and is
 * accepted once (replays are refused; Slack's own retries of an event are acknowledged and
 * dropped). Slack gets its acknowledgement at once; the answer follows asynchronously, in the
 * thread (a message updated with the steps) or through the command's response_url. The asker
 * is the Sextant person their Slack user is linked to, in the tenant of the workspace or
 * channel; anyone else gets a refusal saying why.
 */
export function installSlack(app: Express, deps: AskDeps): { close(): Promise<void> } {
  const settings = deps.settings.slack;
  const service = createAskService(deps);
  const api = settings ? slackApi(settings) : undefined;
  const pending = new Set<Promise<void>>();
  const later = (work: () => Promise<void>) => {
    const p = work().catch((e) => deps.logError("slack", e));
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  app.post("/slack/events", boundedBody(express.raw({ type: () => true, limit: "256kb" }), "256kb"), (req: Request, res: Response, next) => {
    void (async () => {
      if (!settings || !api) return refuse(res, 404, new SextantError("SX404", "Slack is not set up on this server", "Set SEXTANT_SLACK_SIGNING_SECRET and SEXTANT_SLACK_BOT_TOKEN."));
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let signature: string;
      try {
        signature = verifySlackSignature(settings.signingSecret, { timestamp: req.header("x-slack-request-timestamp"), signature: req.header("x-slack-signature") }, raw);
      } catch (error) {
        return refuse(res, 401, error);
      }
      if (!(await firstSeen(`sig:${signature}`))) return refuse(res, 401, new SextantError("SX401", "this signed request was already received (a replay)"));
      if ((req.header("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) {
        return command(new URLSearchParams(raw.toString("utf8")), res, settings, api);
      }
      let body: Record<string, any>;
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        return refuse(res, 400, new SextantError("SX400", "the request body is neither a slash command nor JSON"));
      }
      if (body.type === "url_verification" && typeof body.challenge === "string") return void res.json({ challenge: body.challenge.slice(0, 200) });
      res.status(200).end(); // Slack wants its acknowledgement within 3 seconds; the work happens after.
      const e = body.event ?? {};
      if (body.type !== "event_callback" || e.type !== "app_mention" || e.bot_id || typeof body.event_id !== "string") return;
      if (!(await firstSeen(`event:${body.team_id}:${body.event_id}`))) return; // Slack retried an event it had sent
      const asking = { team: String(body.team_id ?? ""), channel: String(e.channel ?? ""), user: String(e.user ?? ""), question: unescapeSlack(String(e.text ?? "")).replace(/<@[A-Z0-9]+>/g, "").trim() };
      const thread = String(e.thread_ts ?? e.ts ?? "");
      if (![asking.team, asking.channel, asking.user].every((x) => ID.test(x)) || !/^\d{1,12}\.\d{1,8}$/.test(thread)) return;
      later(() => inThread(asking, thread, api));
    })().catch(next);
  });

  async function firstSeen(key: string): Promise<boolean> {
    const { rows } = await deps.pool.query("select sextant_private.slack_first_seen($1) as first", [key]);
    return rows[0].first === true;
  }

  /** The person a Slack user asks as, or the refusal to show them. */
  async function resolve(a: Asking): Promise<Principal | string> {
    const { rows } = await deps.pool.query("select sextant_private.slack_resolve($1, $2, $3) as r", [a.team, a.channel, a.user]);
    const r = rows[0].r as { refusal?: string; tenant?: string; person?: string; access_level?: string };
    if (r.refusal) return r.refusal;
    return buildPrincipal(deps.pool, { tenant: r.tenant!, accessLevel: r.access_level!, subject: r.person!, authMethod: "slack" });
  }

  /**
   * Checks and counts the question as the person; a refusal becomes the text to show. In a
   * thread where the person asked before, the question continues that conversation.
   */
  async function admit(a: Asking, thread?: string): Promise<{ principal: Principal; admitted: Awaited<ReturnType<typeof admitQuestion>> } | string> {
    const who = await resolve(a);
    if (typeof who === "string") return `:no_entry: ${slackEscape(who)}`;
    try {
      const earlier = thread
        ? ((await deps.pool.query("select sextant_private.slack_thread_conversation($1, $2, $3, $4, $5) as id", [a.team, a.channel, thread, who.tenant, who.subject])).rows[0].id as string | null)
        : null;
      const admitted = await admitQuestion(service, who, checkQuestion(a.question), earlier, "slack");
      if (thread && !earlier) {
        await deps.pool.query("select sextant_private.remember_slack_thread($1, $2, $3, $4, $5, $6)", [a.team, a.channel, thread, who.tenant, who.subject, admitted.conversationId]);
      }
      return { principal: who, admitted };
    } catch (error) {
      const pub = toPublicError(error, deps.logError);
      return `:no_entry: ${slackEscape(pub.message)}${pub.hint ? `\n_${slackEscape(pub.hint)}_` : ""}`;
    }
  }

  async function inThread(a: Asking, thread: string, slack: SlackApi): Promise<void> {
    const ok = await admit(a, thread);
    if (typeof ok === "string") return void (await slack.postMessage(a.channel, thread, ok));
    const ts = await slack.postMessage(a.channel, thread, ":hourglass_flowing_sand: working on it…");
    let step = 0;
    let lastUpdate = 0;
    let updates = Promise.resolve();
    const emit = (event: AskEvent) => {
      if (event.type === "step") step = event.step;
      const line = progressText(event, step);
      if (!line || Date.now() - lastUpdate < UPDATE_EVERY_MS) return;
      lastUpdate = Date.now();
      updates = updates.then(() => slack.update(a.channel, ts, line)).catch((e) => deps.logError("slack-update", e));
    };
    const final = await answer(service, ok.principal, ok.admitted, emit, new AbortController().signal);
    await updates;
    await slack.update(a.channel, ts, finalText(final));
  }

  /** A slash command: refusals (unknown person, limits) are the immediate reply; the answer follows through response_url. */
  async function command(form: URLSearchParams, res: Response, s: SlackSettings, slack: SlackApi): Promise<void> {
    const a = { team: form.get("team_id") ?? "", channel: form.get("channel_id") ?? "", user: form.get("user_id") ?? "", question: unescapeSlack(form.get("text") ?? "").trim() };
    const url = allowedResponseUrl(form.get("response_url"), s.apiBase);
    if (![a.team, a.channel, a.user].every((x) => ID.test(x))) return refuse(res, 400, new SextantError("SX400", "the command names no valid team, channel and user"));
    if (!url) return refuse(res, 400, new SextantError("SX400", "the command's response_url is not a Slack address"));
    if (!a.question) return void res.json({ response_type: "ephemeral", text: "Ask a question about your data, e.g. `/ask what was revenue last month?`" });
    const ok = await admit(a);
    if (typeof ok === "string") return void res.json({ response_type: "ephemeral", text: ok });
    res.json({ response_type: "ephemeral", text: ":hourglass_flowing_sand: working on it…" });
    later(async () => {
      const final = await answer(service, ok.principal, ok.admitted, () => {}, new AbortController().signal);
      await slack.respond(url, `*<@${a.user}> asked:* ${slackEscape(a.question)}\n\n${finalText(final)}`, final.type === "answer");
    });
  }

  return { close: async () => void (await Promise.all(pending)) };
}
