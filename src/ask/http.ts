import type { Express, NextFunction, Request, Response } from "express";
import type { Authenticate } from "../auth/authenticate.ts";
import { bearerAuth, principalFromAuth } from "../auth/bearer.ts";
import type { Principal } from "../auth/principal.ts";
import { SextantError, toPublicError } from "../db/errors.ts";
import { jsonBody } from "../http/jsonBody.ts";
import { createAskService, type AskDeps } from "./create.ts";
import type { AskEvent } from "./loop.ts";
import { admitQuestion, answer, checkQuestion, type AskService } from "./service.ts";

const HEARTBEAT_MS = 15_000;
const SERVICE = Symbol.for("sextant.ask");

function send(res: Response, event: string, data: unknown): void {
  // JSON has no raw newlines, so one `data:` line carries the whole event.
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * Answers `{question, conversation_id?}` for `principal` as server-sent events: `conversation`,
 * then `step`, `thought`, `tool_call`, `tool_result` as the loop works, and last `answer` or
 * `stopped`. Refusals before the stream starts (bad input, no model configured, rate or daily
 * limits, someone else's conversation) go to `next` as errors, answered as plain JSON by the
 * door's error handler. The loop stops when the client goes away. Used by POST /ask and the console.
 */
export async function streamAsk(service: AskService, principal: Principal, body: unknown, res: Response, next: NextFunction): Promise<void> {
  const b = (body ?? {}) as { question?: unknown; conversation_id?: unknown };
  let admitted: Awaited<ReturnType<typeof admitQuestion>>;
  try {
    const question = checkQuestion(b.question);
    const id = b.conversation_id === undefined || b.conversation_id === null ? null : String(b.conversation_id);
    admitted = await admitQuestion(service, principal, question, id, "console");
  } catch (error) {
    return next(error);
  }
  const stop = new AbortController();
  res.on("close", () => stop.abort());
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" });
  send(res, "conversation", { conversation_id: admitted.conversationId });
  const beat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
  try {
    const final = await answer(service, principal, admitted, (e: AskEvent) => send(res, e.type, e), stop.signal);
    send(res, final.type, { ...final, conversation_id: admitted.conversationId });
  } catch (error) {
    const pub = toPublicError(error, service.logError);
    send(res, "stopped", { code: pub.code, message: pub.message, hint: pub.hint });
  } finally {
    clearInterval(beat);
    res.end();
  }
}

/** The ask service installAsk made for this app (the console's chat uses it), or an SX404 refusal. */
export function askServiceOf(app: { locals: Record<string, unknown> }): AskService {
  const service = app.locals[SERVICE as unknown as string] as AskService | undefined;
  if (!service) throw new SextantError("SX404", "asking in plain English is not set up on this server");
  return service;
}

/** POST /ask: Bearer auth like /graphql and /mcp, then streamAsk. */
export function installAsk(app: Express, deps: AskDeps & { authenticate: Authenticate; resource?: { url: string; metadataUrl: string } }): void {
  const service = createAskService(deps);
  app.locals[SERVICE as unknown as string] = service;
  app.post("/ask", bearerAuth(deps.authenticate, deps.resource), jsonBody("64kb"), (req: Request, res: Response, next) => {
    streamAsk(service, principalFromAuth(req.auth), req.body, res, next).catch(next);
  });
}
