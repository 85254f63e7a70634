import { createHash, timingSafeEqual } from "node:crypto";
import type { Express, Request } from "express";
import type { Metrics } from "./metrics.ts";

const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

/** Constant-time comparison of a presented bearer token with the configured one. */
function sameToken(presented: string, expected: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/** Whether this request may read /metrics (see installMetrics). */
function allowed(req: Request, token: string | undefined): boolean {
  if (token) {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    return !!m && sameToken(m[1]!, token);
  }
  return LOOPBACK.has(req.socket.remoteAddress ?? "");
}

/**
 * GET /metrics in Prometheus' text format. With SEXTANT_METRICS_TOKEN set, only a request with
 * `Authorization: Bearer <token>` may read it (from anywhere); without it, only clients on this
 * machine's loopback (the socket's address: proxy headers are not trusted). Metrics name
 * tenants, so they are for operators, never for tenants.
 */
export function installMetrics(app: Express, metrics: Metrics, token: string | undefined): void {
  app.get("/metrics", async (req, res) => {
    if (!allowed(req, token)) {
      res.setHeader("WWW-Authenticate", 'Bearer realm="metrics"');
      return void res.status(token ? 401 : 403).json({
        code: token ? "SX401" : "SX403",
        message: token ? "/metrics needs the metrics token" : "/metrics answers only on loopback unless SEXTANT_METRICS_TOKEN is set",
      });
    }
    const { contentType, body } = await metrics.render();
    res.setHeader("Content-Type", contentType);
    res.setHeader("Cache-Control", "no-store");
    res.end(body);
  });
}
