import http from "node:http";
import type { Logger } from "pino";
import type { Config } from "../config.ts";

/** A body nobody read is read and thrown away after the answer, to keep its connection, if declared at most this long. */
const UNREAD_BODY_BYTES = 256 * 1024;

/**
 * An HTTP server for `app` that bounds its clients (config.http): the time to send a request's
 * headers and the whole request, and the connections open at once. The answer is not bounded
 * here: a response may stream as long as it needs (Node's requestTimeout stops counting once the
 * request has been received). A client past a timeout gets Node's 408 and its socket is closed;
 * a connection past the cap is closed on arrival, without an answer.
 */
export function boundedServer(app: http.RequestListener, bounds: Config["http"]): http.Server {
  const server = http.createServer({
    headersTimeout: bounds.headersTimeoutMs,
    requestTimeout: bounds.requestTimeoutMs,
    // Node checks both timeouts only every connectionsCheckingInterval (30 s by default: a client
    // could hold a connection 50 s under a 20 s bound). A check walks only the connections still
    // sending a request, so once a second costs nothing noticeable; under half the bound for
    // bounds below 2 s, so a client never keeps more than 1.5 times it (100 ms at the least).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(bounds.headersTimeoutMs / 2))),
  }, (req, res) => {
    // An answer sent before the request's body has all arrived (401 without a credential, 404,
    // a refusal, a route that ignores the body): Node reads and throws away the rest, to keep the
    // connection, for as long as it comes (up to the request timeout). Unless the body is
    // declared short (UNREAD_BODY_BYTES, as Go's net/http: maxPostHandlerReadBytes), the
    // connection is closed instead.
    res.once("finish", () => {
      if (!req.complete && !(Number(req.headers["content-length"]) <= UNREAD_BODY_BYTES)) req.socket?.destroySoon(); // (none: already closed)
    });
    app(req, res);
  });
  server.maxConnections = bounds.maxConnections;
  return server;
}

/**
 * Logs a warning when `server` closes a connection for its maxConnections cap: the first at
 * once, then at most one line per `windowMs` with the count since the last line, so a flood of
 * connections does not flood the log. `stop()` logs the count not yet logged.
 */
export function warnOnDroppedConnections(server: http.Server, log: Logger, windowMs = 10_000): { stop(): void } {
  let unlogged = 0;
  let window: NodeJS.Timeout | undefined;
  const flush = () => {
    if (unlogged > 0) {
      log.warn({ dropped: unlogged, maxConnections: server.maxConnections },
        "connections closed on arrival: SEXTANT_HTTP_MAX_CONNECTIONS connections are open");
      unlogged = 0;
    }
  };
  const tick = () => {
    window = undefined;
    if (unlogged === 0) return;
    flush();
    window = setTimeout(tick, windowMs).unref();
  };
  const onDrop = () => {
    unlogged++;
    if (!window) tick();
  };
  server.on("drop", onDrop);
  return {
    stop() {
      server.off("drop", onDrop);
      clearTimeout(window);
      window = undefined;
      flush();
    },
  };
}
