import { createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface SlackCall {
  path: string;
  authorization?: string;
  body: Record<string, any>;
  /** The ts the stand-in gave a posted message. */
  answeredTs?: string;
}

/**
 * A stand-in Slack on loopback: the Web API methods the app calls (under /api) and
 * slash-command response URLs (under /hooks), each call kept for the test to read.
 */
export async function startSlackServer() {
  const calls: SlackCall[] = [];
  let ts = 1000;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const call: SlackCall = { path: req.url ?? "", authorization: req.headers.authorization, body: JSON.parse(body || "{}") };
      calls.push(call);
      res.writeHead(200, { "content-type": "application/json" });
      if (req.url?.startsWith("/hooks/")) return void res.end('{"ok":true}');
      call.answeredTs = `${++ts}.000100`;
      res.end(JSON.stringify({ ok: true, channel: "C1", ts: call.answeredTs }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    calls,
    apiUrl: `${base}/api`,
    hookUrl: (name: string) => `${base}/hooks/${name}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Signs a body the way Slack does (v0 HMAC-SHA256 over `v0:<ts>:<body>`). */
export function slackHeaders(secret: string, body: string, type: "json" | "form", timestamp = Math.floor(Date.now() / 1000)) {
  const signature = `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
  return {
    "content-type": type === "json" ? "application/json" : "application/x-www-form-urlencoded",
    "x-slack-request-timestamp": String(timestamp),
    "x-slack-signature": signature,
  };
}
