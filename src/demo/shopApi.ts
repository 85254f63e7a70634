import http from "node:http";

export interface ShopApiOptions {
  customers?: number;
  orders?: number;
  /** Records per page (customers: ?page=&per_page=; orders: ?cursor=&limit=). */
  pageSize?: number;
  /** Every n-th request answers 429 (Retry-After: 0). 0: never. */
  rateLimitEvery?: number;
  /** This customers page answers 500 the first time it is asked for. 0: never. */
  failPageOnce?: number;
  /** Milliseconds before each answer (to watch or interrupt a load). */
  delayMs?: number;
  /** Answer customers pages with a body that is not JSON. */
  garbage?: boolean;
  /** Bearer token required on every request, when set. */
  token?: string;
  /** Port on 127.0.0.1; 0 (default): any free port. */
  port?: number;
}

/**
 * A small shop API for the example pipeline and the tests: customers paginated by page number,
 * orders by cursor, with a 429 on some calls and a failure on one page, so loaders' retries
 * are exercised on every run. Data is deterministic.
 */
export function startShopApi(opts: ShopApiOptions = {}): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  const nCustomers = opts.customers ?? 120;
  const nOrders = opts.orders ?? 400;
  const size = opts.pageSize ?? 25;
  let requests = 0;
  const failed = new Set<number>();
  const customer = (i: number) => ({
    id: i,
    name: `Customer ${i}`,
    email: `customer${i}@example.com`,
    country: ["FR", "DE", "US", "JP"][i % 4],
    signedUpAt: new Date(Date.UTC(2024, 0, 1 + (i % 365))).toISOString(),
    vip: i % 10 === 0,
    address: { city: `City ${i % 17}`, zip: String(10000 + i) },
  });
  const order = (i: number) => ({ id: i, customer_id: 1 + (i % nCustomers), amount: Math.round(((i * 37) % 1000) * 100 + 99) / 100, status: i % 7 === 0 ? "refunded" : "paid" });

  const server = http.createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? "/", "http://x");
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      setTimeout(() => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(text);
      }, opts.delayMs ?? 0);
    };
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) return send(401, { error: "unauthorized" });
    if (opts.rateLimitEvery && requests % opts.rateLimitEvery === 0) return send(429, { error: "slow down" }, { "retry-after": "0" });
    if (url.pathname === "/customers") {
      const page = Number(url.searchParams.get("page") ?? 1);
      const per = Math.min(Number(url.searchParams.get("per_page") ?? size), 1000);
      if (opts.failPageOnce && page === opts.failPageOnce && !failed.has(page)) {
        failed.add(page);
        return send(500, { error: "temporary failure" });
      }
      if (opts.garbage) return send(200, "<html>oops</html>");
      const from = (page - 1) * per + 1;
      const data = [];
      for (let i = from; i < from + per && i <= nCustomers; i++) data.push(customer(i));
      return send(200, { data, meta: { page, per_page: per, total: nCustomers } });
    }
    if (url.pathname === "/orders") {
      const cursor = Number(url.searchParams.get("cursor") ?? 0);
      const limit = Math.min(Number(url.searchParams.get("limit") ?? size), 1000);
      const data = [];
      for (let i = cursor + 1; i <= cursor + limit && i <= nOrders; i++) data.push(order(i));
      const next = cursor + limit < nOrders ? String(cursor + limit) : null;
      return send(200, { orders: data, next_cursor: next });
    }
    send(404, { error: "not found" });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      const address = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${address.port}`,
        requests: () => requests,
        close: () => new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}
