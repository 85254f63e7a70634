import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Proxy {
  url: string;
  /** Which backend (index) answered each request, in order; -1 when none could (yet). */
  served: number[];
  /** Which backend each request was last sent to, in order (known before it answers). */
  routed: number[];
  close(): Promise<void>;
}

/**
 * A round-robin HTTP proxy on loopback, as a plain load balancer would be: each request goes to
 * the next backend; a backend that refuses the connection (the request never reached it) is
 * skipped for the next one, like nginx's proxy_next_upstream error; a backend that dies with the
 * request in flight ends that response (the client sees it fail). The Host header passes through
 * as sent (Sextant checks it); `headers` are added to every request (a token for a client that
 * cannot send one).
 */
export async function startProxy(backends: string[], headers: Record<string, string> = {}): Promise<Proxy> {
  let next = 0;
  const served: number[] = [];
  const routed: number[] = [];
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const slot = served.push(-1) - 1;
      routed.push(-1);
      const attempt = (tries: number) => {
        const i = next++ % backends.length;
        routed[slot] = i;
        const target = new URL(req.url ?? "/", backends[i]);
        const out = http.request(target, { method: req.method, headers: { ...req.headers, ...headers } }, (up) => {
          served[slot] = i;
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          up.on("error", () => res.destroy());
          up.on("aborted", () => res.destroy());
        });
        out.on("error", (e: NodeJS.ErrnoException) => {
          if (!res.headersSent && e.code === "ECONNREFUSED" && tries < backends.length) return attempt(tries + 1);
          if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ error: `proxy: ${e.code ?? e.message}` }));
          else res.destroy();
        });
        out.end(body);
      };
      attempt(1);
    });
  });
  server.on("connection", (s) => (sockets.add(s), s.on("close", () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    served,
    routed,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
