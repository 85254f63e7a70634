import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { asRole, createToken, withTx } from "./helpers/db.ts";
import { useTestServer } from "./helpers/setup.ts";
import { callOk, connectHttp, textOf } from "./helpers/mcpClient.ts";
import { gql as gqlRequest } from "./helpers/graphql.ts";

const { db, server } = useTestServer();
let analyst: Client;
let viewer: Client;
let adminToken: string;

beforeAll(async () => {
  analyst = (await connectHttp(server.url, await createToken(db, "demo", "kn-analyst", "analyst"))).client;
  viewer = (await connectHttp(server.url, await createToken(db, "demo", "kn-viewer", "viewer"))).client;
  adminToken = await createToken(db, "demo", "kn-admin", "admin");
});
afterAll(async () => {
  await analyst?.close();
  await viewer?.close();
});

async function gql(token: string, query: string, variables: Record<string, unknown> = {}) {
  return (await gqlRequest(server.url, token, query, variables)).body;
}

describe("knowledge layer", () => {
  test("an analyst records a learning; it shows in get_knowledge, search and describe_table", async () => {
    const saved = (await callOk(analyst, "save_learning", {
      learning: "Cancelled orders still have order_items rows; exclude status cancelled before summing revenue.",
      table: "orders",
      confidence: 0.9,
    })) as { table_ref: string; status: string; recorded_by: string };
    expect(saved).toMatchObject({ table_ref: "shop.orders", status: "proposed", recorded_by: "kn-analyst" });
    const k = (await callOk(viewer, "get_knowledge", { table: "shop.orders" })) as { rows: { learnings: { learning: string }[] }[] };
    expect(k.rows[0]!.learnings[0]!.learning).toMatch(/Cancelled orders/);
    const hits = (await callOk(viewer, "search_knowledge", { query: "revenue from cancelled orders" })) as { rows: { kind: string; table_ref: string }[] };
    expect(hits.rows[0]).toMatchObject({ kind: "learning", table_ref: "shop.orders" });
    const d = await viewer.callTool({ name: "describe_table", arguments: { table: "orders" } });
    expect(textOf(d)).toMatch(/learning \(proposed, confidence 0.9\): Cancelled orders/);
  });

  test("a viewer cannot record learnings, through the tool or around it", async () => {
    const r = await viewer.callTool({ name: "save_learning", arguments: { learning: "x" } });
    expect(textOf(r)).toMatch(/^error SX403: recording learnings needs the analyst or admin role/);
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_demo");
      await expect(client.query("insert into sextant.learnings (learning) values ('sneaky')")).rejects.toMatchObject({ code: "42501" });
    });
  });

  test("admins confirm learnings and edit notes through GraphQL mutations; other tenants see nothing", async () => {
    const learningId = (await db.admin.query("select id from sextant.learnings order by id limit 1")).rows[0].id;
    const reviewed = await gql(adminToken, `mutation($id: BigInt!) { reviewLearning(input: { learningId: $id, status: "confirmed" }) { result { status reviewedBy } } }`, { id: String(learningId) });
    expect(reviewed.errors).toBeUndefined();
    expect(reviewed.data.reviewLearning.result).toEqual({ status: "confirmed", reviewedBy: "kn-admin" });
    const note = await gql(adminToken, `mutation { createKnowledgeNote(input: { knowledgeNote: {
        tableRef: "shop.orders", description: "One row per checkout", owner: "sales-ops", refreshFrequency: "hourly",
        joinHints: [{ table: "shop.customers", on: "orders.customer_id = customers.id" }] } }) { knowledgeNote { tableRef owner updatedBy } } }`);
    expect(note.errors).toBeUndefined();
    expect(note.data.createKnowledgeNote.knowledgeNote).toEqual({ tableRef: "shop.orders", owner: "sales-ops", updatedBy: "kn-admin" });
    const d = await viewer.callTool({ name: "describe_table", arguments: { table: "orders" } });
    expect(textOf(d)).toContain("note owner: sales-ops");
    // get_metadata carries the note, the join hint and the learnings too, briefly.
    const meta = textOf(await viewer.callTool({ name: "get_metadata", arguments: { schema: "shop" } }));
    expect(meta).toContain("  note: One row per checkout");
    expect(meta).toContain("  join hint: shop.customers on orders.customer_id = customers.id");
    expect(meta).toMatch(/  learning: Cancelled orders still have order_items rows/);
    const acme = await connectHttp(server.url, await createToken(db, "acme", "kn-acme", "admin"));
    const seen = (await callOk(acme.client, "get_knowledge")) as { rows: unknown[] };
    expect(seen.rows).toEqual([]);
    const hits = (await callOk(acme.client, "search_knowledge", { query: "cancelled orders" })) as { rows: unknown[] };
    expect(hits.rows).toEqual([]);
    // A tenant cannot write into another tenant's knowledge, even naming it.
    await withTx(db.auth, async (client) => {
      await asRole(client, "sextant_t_acme__admin");
      await expect(client.query("insert into sextant.knowledge_entries (title, body) values ('t', 'b') returning tenant_slug"))
        .resolves.toMatchObject({ rows: [{ tenant_slug: "acme" }] });
      await client.query("savepoint s");
      await expect(client.query("update sextant.knowledge_notes set owner = 'mallory'")).resolves.toMatchObject({ rowCount: 0 });
    });
    await acme.client.close();
  });

  test("a viewer's GraphQL mutation on notes is refused by row-level security", async () => {
    const viewerToken = await createToken(db, "demo", "kn-viewer2", "viewer");
    const r = await gql(viewerToken, `mutation { createKnowledgeEntry(input: { knowledgeEntry: { title: "x", body: "y" } }) { knowledgeEntry { id } } }`);
    expect(r.errors?.[0].extensions.code).toBe("42501");
  });
});
