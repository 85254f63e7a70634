import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadDbtArtifacts } from "../../src/dbt/loadArtifacts.ts";
import type { TestDatabase } from "../helpers/db.ts";
import { readEvents } from "./modelServer.ts";

/** A small dbt project for acme: model `orders` on acme_sales.orders (the template's table). */
export async function loadAcmeProject(db: TestDatabase): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-ask-dbt-"));
  const manifest = {
    metadata: { dbt_schema_version: "https://schemas.getdbt.com/dbt/manifest/v12.json", dbt_version: "1.8.0", project_name: "acme_shop" },
    nodes: {
      "model.acme_shop.orders": {
        unique_id: "model.acme_shop.orders", name: "orders", resource_type: "model", package_name: "acme_shop",
        database: "x", schema: "acme_sales", alias: "orders", relation_name: "x.acme_sales.orders",
        config: { materialized: "table" }, description: "Every Acme order with its customer and amount (revenue).",
        columns: {
          id: { name: "id", description: "Order id", data_type: "integer" },
          customer: { name: "customer", description: "Customer name", data_type: "text" },
          amount: { name: "amount", description: "Order amount in dollars (revenue)", data_type: "numeric" },
        },
        raw_code: "select * from raw.orders", depends_on: { nodes: [] }, tags: ["finance"], meta: {}, original_file_path: "models/orders.sql",
      },
    },
    sources: {}, exposures: {}, metrics: {}, semantic_models: {},
  };
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
  const client = new pg.Client({ connectionString: db.adminUrl });
  await client.connect();
  try {
    await loadDbtArtifacts(client, { tenant: "acme", dir });
  } finally {
    await client.end();
    fs.rmSync(dir, { recursive: true, force: true });
  }
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
