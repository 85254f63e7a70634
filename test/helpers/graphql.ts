/** One GraphQL request over HTTP with a Bearer token; the status and the parsed body. */
export async function gql(baseUrl: string, token: string, query: string, variables?: Record<string, unknown>) {
  const res = await fetch(`${baseUrl}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body: { data?: any; errors?: any[] };
  try {
    body = JSON.parse(text);
  } catch {
    body = { errors: [{ message: text }] };
  }
  return { status: res.status, body, bytes: text.length };
}

/** Polls `check` until it returns a truthy value or `ms` pass (then the last value is returned). */
export async function eventually<T>(check: () => Promise<T>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    // An empty array (no rows yet) is truthy but is not an answer: keep waiting for it.
    if ((Array.isArray(value) ? value.length > 0 : value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}
