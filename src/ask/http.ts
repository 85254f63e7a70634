import express, { type Express, type Request, type Response } from "express";
import type { Authenticate } from "../auth/authenticate.ts";
import { bearerAuth, principalFromAuth } from "../auth/bearer.ts";
import { toPublicError } from "../db/errors.ts";
import type { AskEvent } from "./loop.ts";
import { createAskService, type AskDeps } from "./create.ts";
import { admitQuestion, answer, checkQuestion } from "./service.ts";

const HEARTBEAT_MS = 15_000;

function send(res: Response, event: string, data: unknown): void {
  // JSON has no raw newlines, so one `data:` line carries the whole event.
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * POST /ask {question, conversation_id?}: Bearer auth like /graphql and /mcp; refusals
 * (bad input, no model configured, rate or daily limits, someone else's conversation) are
 * plain JSON errors; an admitted question is answered as server-sent events: `conversation`,
 * then `step`, `thought`, `tool_call`, `tool_result` as the loop works, and last `answer` or
 * `stopped`. The loop stops when the client goes away.
 */
export function installAsk(app: Express, deps: AskDeps & { authenticate: Authenticate; resource?: { url: string; metadataUrl: string } }): void {
  const service = createAskService(deps);
  app.post("/ask", bearerAuth(deps.authenticate, deps.resource), express.json({ limit: "64kb" }), (req: Request, res: Response, next) => {
    void (async () => {
      const principal = principalFromAuth(req.auth);
      const body = (req.body ?? {}) as { question?: unknown; conversation_id?: unknown };
      let admitted: Awaited<ReturnType<typeof admitQuestion>>;
      try {
        const question = checkQuestion(body.question);
        const id = body.conversation_id === undefined || body.conversation_id === null ? null : String(body.conversation_id);
        admitted = await admitQuestion(service, principal, question, id, "console");
      } catch (error) {
        return next(error); // the server's error handler answers in the public shape
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
    })().catch(next);
  });
}
