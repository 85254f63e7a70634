import type { TestDatabase } from "../helpers/db.ts";
import { loadManifest, manifestV12, modelNode } from "../helpers/dbt.ts";
import { readEvents } from "./modelServer.ts";

/** A small dbt project for acme: model `orders` on acme_sales.orders (the template's table). */
export async function loadAcmeProject(db: TestDatabase): Promise<void> {
  await loadManifest(db, manifestV12("acme_shop", {
    nodes: {
      "model.acme_shop.orders": modelNode("acme_shop", "acme_sales", "orders", {
        description: "Every Acme order with its customer and amount (revenue).",
        columns: {
          id: { description: "Order id", data_type: "integer" },
          customer: { description: "Customer name", data_type: "text" },
          amount: { description: "Order amount in dollars (revenue)", data_type: "numeric" },
        },
        raw_code: "select * from raw.orders", tags: ["finance"],
      }),
    },
  }), { tenant: "acme" });
}

/** POST /ask and read the whole event stream (or the JSON refusal). */
export async function ask(url: string, token: string, body: Record<string, unknown>) {
  const res = await fetch(`${url}/ask`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    return { status: res.status, error: (await res.json()) as Record<string, string>, events: [], final: undefined };
  }
  const events = await readEvents(res);
  return { status: res.status, error: undefined, events, final: events.at(-1) };
}
