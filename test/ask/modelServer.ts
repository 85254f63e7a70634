import http from "node:http";
import type { AddressInfo } from "node:net";
import { useResource } from "../helpers/setup.ts";

/** One scripted model turn: tool calls, a final text, or a misbehaviour of the endpoint. */
export type Turn =
  | { text?: string; calls?: { name: string; arguments: unknown; id?: string }[]; usage?: number }
  | { status: number; body?: string; retryAfter?: number }
  | { raw: string }
  | { hang: true }
  | { bytes: number };

export interface SeenRequest {
  provider: "anthropic" | "openai";
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Every tool result text sent back to the model in this request, oldest first. */
  toolResults: string[];
  toolNames: string[];
}

/**
 * A stand-in LLM on loopback speaking both wire formats: Anthropic Messages at …/v1/messages
 * and OpenAI chat completions at …/v1/chat/completions. It replays `turns` in order (the
 * `script` function, when set, decides instead) and keeps every request it got.
 */
export async function startModelServer() {
  const state = {
    turns: [] as Turn[],
    script: undefined as undefined | ((req: SeenRequest, n: number) => Turn),
    requests: [] as SeenRequest[],
  };
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const provider = req.url?.endsWith("/messages") ? "anthropic" : "openai";
      const parsed = JSON.parse(body) as Record<string, unknown>;
      const messages = (parsed.messages ?? []) as Record<string, unknown>[];
      const toolResults = provider === "openai"
        ? messages.filter((m) => m.role === "tool").map((m) => String(m.content))
        : messages.flatMap((m) => (Array.isArray(m.content) ? m.content : [])).filter((b: Record<string, unknown>) => b.type === "tool_result").map((b: Record<string, unknown>) => String(b.content));
      const toolNames = ((parsed.tools ?? []) as Record<string, unknown>[]).map((t) => String(provider === "openai" ? (t.function as { name: string }).name : t.name));
      const seen: SeenRequest = { provider, headers: req.headers, body: parsed, toolResults, toolNames };
      state.requests.push(seen);
      const n = state.requests.length;
      const turn = state.script ? state.script(seen, n) : (state.turns.shift() ?? { text: "I have nothing more to say." });
      if ("hang" in turn) return; // never answers
      if ("status" in turn) {
        if (turn.retryAfter !== undefined) res.setHeader("retry-after", String(turn.retryAfter));
        res.writeHead(turn.status, { "content-type": "application/json" });
        return void res.end(turn.body ?? '{"error":{"message":"stand-in failure"}}');
      }
      res.writeHead(200, { "content-type": "application/json" });
      if ("raw" in turn) return void res.end(turn.raw);
      if ("bytes" in turn) return void res.end(`{"pad":"${"x".repeat(turn.bytes)}"}`);
      const usage = turn.usage ?? 100;
      const calls = turn.calls ?? [];
      if (provider === "anthropic") {
        const content = [
          ...(turn.text ? [{ type: "text", text: turn.text }] : []),
          ...calls.map((c, i) => ({ type: "tool_use", id: c.id ?? `toolu_${n}_${i}`, name: c.name, input: c.arguments })),
        ];
        res.end(JSON.stringify({ id: `msg_${n}`, type: "message", role: "assistant", content, stop_reason: calls.length ? "tool_use" : "end_turn", usage: { input_tokens: usage / 2, output_tokens: usage / 2 } }));
      } else {
        const message = {
          role: "assistant",
          content: turn.text ?? null,
          ...(calls.length ? { tool_calls: calls.map((c, i) => ({ id: c.id ?? `call_${n}_${i}`, type: "function", function: { name: c.name, arguments: typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments) } })) } : {}),
        };
        res.end(JSON.stringify({ id: `chatcmpl_${n}`, object: "chat.completion", choices: [{ index: 0, message, finish_reason: calls.length ? "tool_calls" : "stop" }], usage: { prompt_tokens: usage / 2, completion_tokens: usage / 2 } }));
      }
    });
  });
  server.on("connection", (s) => (sockets.add(s), s.on("close", () => sockets.delete(s))));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    state,
    anthropicUrl: `${base}/v1/messages`,
    openaiUrl: `${base}/v1/chat/completions`,
    reset() {
      state.turns = [];
      state.script = undefined;
      state.requests = [];
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type ModelServer = Awaited<ReturnType<typeof startModelServer>>;

/**
 * The file's stand-in model, started in beforeAll and closed after its tests. Register it
 * before the servers whose settings name its URLs (they start after it and close before it).
 */
export function useModelServer(): ModelServer {
  return useResource("the stand-in model", startModelServer, (model) => model.close());
}

/** Reads a server-sent event stream to its end: the events in order, with their JSON data. */
export async function readEvents(res: Response): Promise<{ event: string; data: Record<string, unknown> }[]> {
  const text = await res.text();
  const events: { event: string; data: Record<string, unknown> }[] = [];
  for (const block of text.split("\n\n")) {
    const event = /^event: (.+)$/m.exec(block)?.[1];
    const data = /^data: (.+)$/m.exec(block)?.[1];
    if (event && data) events.push({ event, data: JSON.parse(data) });
  }
  return events;
}
