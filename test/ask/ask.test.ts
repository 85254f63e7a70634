import { beforeAll, beforeEach, describe, expect, test } from "vitest";
import { createToken } from "../helpers/db.ts";
import { eventually, gql } from "../helpers/graphql.ts";
import { useServer, useTestDatabase } from "../helpers/setup.ts";
import { ask, loadAcmeProject } from "./fixtures.ts";
import { useModelServer } from "./modelServer.ts";

const db = useTestDatabase();
const model = useModelServer();
beforeAll(async () => {
  await loadAcmeProject(db);
});
const anthropic = useServer(db, async () => ({ SEXTANT_LLM_URL: model.anthropicUrl, SEXTANT_LLM_MODEL: "claude-test", SEXTANT_LLM_API_KEY: "sk-ant-test", SEXTANT_LLM_RETRIES: "1" }));
// An OpenAI-compatible base URL without the path: the provider and the endpoint follow from settings.
const openai = useServer(db, async () => ({ SEXTANT_LLM_URL: model.openaiUrl.replace("/chat/completions", ""), SEXTANT_LLM_PROVIDER: "openai", SEXTANT_LLM_MODEL: "gpt-test", SEXTANT_LLM_API_KEY: "sk-test", SEXTANT_LLM_RETRIES: "1", SEXTANT_LLM_TIMEOUT_MS: "500" }));
let analyst: string;
let viewer: string;
let otherViewer: string;

beforeAll(async () => {
  analyst = await createToken(db, "acme", "ana@acme.test", "analyst");
  viewer = await createToken(db, "acme", "vic@acme.test", "viewer");
  otherViewer = await createToken(db, "acme", "olga@acme.test", "viewer");
}, 120_000);
beforeEach(() => model.reset());

const revenueScript = [
  { calls: [{ name: "search_dbt_models", arguments: { query: "order revenue" } }] },
  { calls: [{ name: "describe_table", arguments: { table: "acme_sales.orders" } }] },
  { calls: [{ name: "query", arguments: { sql: "select customer, amount from acme_sales.orders order by amount desc limit 3" } }] },
  { text: "The three largest orders are 500, 490 and 480 dollars (model orders, table acme_sales.orders).\nchart: bar x=customer y=amount" },
];

describe("a question answered through search_dbt_models, describe_table and query", () => {
  test("on the Anthropic Messages API: steps stream, the answer carries its SQL, models, table and chart", async () => {
    model.state.turns = structuredClone(revenueScript);
    const r = await ask(anthropic.url, analyst, { question: "What are our three largest orders?" });
    expect(r.status).toBe(200);
    const names = r.events.map((e) => e.event);
    expect(names[0]).toBe("conversation");
    expect(names.filter((n) => n === "tool_call")).toHaveLength(3);
    expect(r.events.filter((e) => e.event === "tool_call").map((e) => e.data.name)).toEqual(["search_dbt_models", "describe_table", "query"]);
    expect(r.events.filter((e) => e.event === "tool_result").every((e) => e.data.ok === true)).toBe(true);
    expect(r.final?.event).toBe("answer");
    const a = r.final!.data as any;
    expect(a.text).toContain("500, 490 and 480");
    expect(a.text).not.toContain("chart:");
    expect(a.details.sql).toEqual([{ sql: "select customer, amount from acme_sales.orders order by amount desc limit 3", row_count: 3 }]);
    expect(a.details.models).toEqual(["orders"]);
    // The table's rows are arrays in the order of its columns, as the query tool gives them.
    expect(a.details.table.columns.map((c: any) => c.name)).toEqual(["customer", "amount"]);
    expect(a.details.table.rows.map((x: any) => Number(x[1]))).toEqual([500, 490, 480]);
    expect(a.details.chart).toEqual({ type: "bar", x: "customer", y: "amount" });

    // The model got the real rows, fenced as untrusted data, and the key in Anthropic's header.
    const last = model.state.requests.at(-1)!;
    expect(last.provider).toBe("anthropic");
    expect(last.headers["x-api-key"]).toBe("sk-ant-test");
    expect(last.toolResults).toHaveLength(3);
    for (const t of last.toolResults) expect(t).toMatch(/<<<DATA-[0-9a-f]{12}\n/);
    expect(last.toolResults[2]).toContain("acme customer 50\t500");
    // Analysts may record corrections; nothing that provisions or loads is offered.
    expect(last.toolNames).toContain("save_learning");
    expect(last.toolNames).not.toContain("run_materialization");
    expect(last.toolNames).not.toContain("provision_schema");

    // Each tool call was audited as the person, like an MCP call, and the question as `ask`.
    const audited = await eventually(async () => {
      const { rows } = await db.admin.query("select tool, principal, outcome, sql from sextant.audit_events where principal = 'ana@acme.test' order by id");
      return rows.length >= 4 ? rows : undefined;
    });
    expect(audited!.map((e) => e.tool)).toEqual(["search_dbt_models", "describe_table", "query", "ask"]);
    expect(audited![2].sql).toContain("order by amount desc");
  });

  test("on an OpenAI-compatible endpoint: the same tools, chat-completions wire format, Bearer key", async () => {
    model.state.turns = structuredClone(revenueScript);
    const r = await ask(openai.url, viewer, { question: "What are our three largest orders?" });
    expect(r.final?.event).toBe("answer");
    expect((r.final!.data as any).details.sql[0].row_count).toBe(3);
    const last = model.state.requests.at(-1)!;
    expect(last.provider).toBe("openai");
    expect(last.headers.authorization).toBe("Bearer sk-test");
    expect(last.body.max_tokens).toBe(4096);
    expect((last.body.messages as any[])[0].role).toBe("system");
    // Viewers are not offered save_learning.
    expect(last.toolNames).not.toContain("save_learning");
    expect(last.toolNames).toContain("query");
  });
});

describe("conversations", () => {
  test("are resumable by their owner, readable by others once shared, and kept in GraphQL", async () => {
    model.state.turns = structuredClone(revenueScript);
    const first = await ask(anthropic.url, viewer, { question: "What are our three largest orders?" });
    const id = first.events[0]!.data.conversation_id as string;
    model.state.turns = [{ text: "The largest was 500 dollars." }];
    const second = await ask(anthropic.url, viewer, { question: "And the largest alone?", conversation_id: id });
    expect(second.final?.event).toBe("answer");
    // The model saw the earlier turn, with the SQL it ran.
    const msgs = model.state.requests.at(-1)!.body.messages as any[];
    expect(msgs).toHaveLength(3);
    expect(JSON.stringify(msgs[1])).toContain("SQL I ran: select customer, amount");

    // Someone else in the tenant neither sees it nor continues it ...
    const hidden = await gql(anthropic.url, otherViewer, `{ allAskConversations { nodes { rowId } } }`);
    expect(hidden.body.data.allAskConversations.nodes.map((n: any) => n.rowId)).not.toContain(id);
    const refused = await ask(anthropic.url, otherViewer, { question: "more", conversation_id: id });
    expect(refused.status).toBe(404);
    // ... until the owner shares it: then they read it (not continue it).
    const shared = await gql(anthropic.url, viewer, `mutation($id: UUID!) { updateAskConversationByRowId(input: {rowId: $id, askConversationPatch: {shared: true}}) { askConversation { shared } } }`, { id });
    expect(shared.body).toEqual({ data: { updateAskConversationByRowId: { askConversation: { shared: true } } } });
    const read = await gql(anthropic.url, otherViewer, `query($id: UUID!) { allAskMessages(condition: {conversationId: $id}, orderBy: ROW_ID_ASC) { nodes { kind body } } }`, { id });
    expect(read.body.data.allAskMessages.nodes.map((n: any) => n.kind)).toEqual(["question", "answer", "question", "answer"]);
    const notTheirs = await ask(anthropic.url, otherViewer, { question: "more", conversation_id: id });
    expect(notTheirs.status).toBe(403);
    expect(notTheirs.error!.code).toBe("SX403");
    // Another tenant sees nothing of it.
    const globex = await createToken(db, "globex", "gus@globex.test", "admin");
    const cross = await gql(anthropic.url, globex, `{ allAskMessages { nodes { body } } }`);
    expect(cross.body.data.allAskMessages.nodes).toEqual([]);
  });

  test("a correction from an analyst becomes a learning; a viewer's cannot", async () => {
    model.state.turns = [
      { calls: [{ name: "save_learning", arguments: { learning: "Revenue excludes orders under 20 dollars (test orders).", table: "acme_sales.orders", confidence: 0.8 } }] },
      { text: "Noted: revenue excludes orders under 20 dollars." },
    ];
    const r = await ask(anthropic.url, analyst, { question: "That is wrong: revenue must leave out orders under 20 dollars, they are tests." });
    expect(r.final?.event).toBe("answer");
    const { rows } = await db.admin.query("select table_ref, recorded_by, confidence from sextant.learnings where learning like 'Revenue excludes%'");
    expect(rows).toEqual([{ table_ref: "acme_sales.orders", recorded_by: "ana@acme.test", confidence: "0.8" }]);

    model.state.turns = [
      { calls: [{ name: "save_learning", arguments: { learning: "Viewer wrote this." } }] },
      { text: "I cannot record that." },
    ];
    const v = await ask(anthropic.url, viewer, { question: "Wrong, remember this." });
    const result = v.events.find((e) => e.event === "tool_result")!.data;
    expect(result.ok).toBe(false);
    expect(String(result.error)).toContain("no tool named");
    expect((await db.admin.query("select count(*)::int as n from sextant.learnings where learning = 'Viewer wrote this.'")).rows[0].n).toBe(0);
  });
});

describe("refusals and budgets", () => {
  test("a model trying to write is refused by the query path, and nothing changes", async () => {
    model.state.turns = [
      { calls: [{ name: "query", arguments: { sql: "delete from acme_sales.orders" } }] },
      { calls: [{ name: "query", arguments: { sql: "with d as (delete from acme_sales.orders returning *) select * from d" } }] },
      { text: "I cannot change data." },
    ];
    const r = await ask(anthropic.url, analyst, { question: "Delete all orders" });
    const results = r.events.filter((e) => e.event === "tool_result").map((e) => e.data);
    expect(results.map((x) => x.ok)).toEqual([false, false]);
    expect(String(results[0]!.error)).toMatch(/SX400/);
    expect(r.final?.event).toBe("answer");
    expect((r.final!.data as any).details.sql).toEqual([]);
    expect((await db.admin.query("select count(*)::int as n from acme_sales.orders")).rows[0].n).toBe(50);
  });

  test("another tenant's table is refused: its rows never reach the model", async () => {
    model.state.turns = [
      { calls: [{ name: "query", arguments: { sql: "select * from globex_ops.shipments" } }] },
      { calls: [{ name: "describe_table", arguments: { table: "globex_ops.shipments" } }] },
      { calls: [{ name: "query", arguments: { sql: "select set_config('role', 'sextant_t_globex', true)" } }] },
      { text: "I cannot read that." },
    ];
    const r = await ask(anthropic.url, analyst, { question: "Show globex shipments" });
    expect(r.events.filter((e) => e.event === "tool_result").map((e) => e.data.ok)).toEqual([false, false, false]);
    const seen = model.state.requests.map((q) => q.toolResults.join("\n")).join("\n");
    expect(seen).not.toContain("globex secret");
    expect(r.final?.event).toBe("answer");
  });

  test("a model that never stops is stopped by the step budget, with a clear message", async () => {
    model.state.script = () => ({ calls: [{ name: "list_schemas", arguments: {} }] });
    const r = await ask(anthropic.url, viewer, { question: "loop forever" });
    expect(r.final?.event).toBe("stopped");
    expect(r.final!.data).toMatchObject({ code: "SX413", message: "stopped after 12 steps without an answer", steps: 12 });
    expect(String(r.final!.data.hint)).toContain("SEXTANT_ASK_MAX_STEPS");
    expect(model.state.requests).toHaveLength(12);
    // Stored as the conversation's last message, so the person sees why.
    const { rows } = await db.admin.query("select kind, body from sextant.ask_messages where conversation_id = $1 order by id", [r.events[0]!.data.conversation_id]);
    expect(rows.map((x) => x.kind)).toEqual(["question", "stopped"]);
  });

  test("malformed tool calls are answered to the model as errors, and it recovers", async () => {
    model.state.turns = [
      { calls: [{ name: "query", arguments: "{not json" }] },
      { calls: [{ name: "describe_table", arguments: { table: 42 } }] },
      { calls: [{ name: "no_such_tool", arguments: {} }] },
      { calls: [{ name: "query", arguments: { sql: "select count(*) as n from acme_sales.orders" } }] },
      { text: "There are 50 orders." },
    ];
    const r = await ask(openai.url, viewer, { question: "How many orders?" });
    const results = r.events.filter((e) => e.event === "tool_result").map((e) => e.data);
    expect(results.map((x) => x.ok)).toEqual([false, false, false, true]);
    expect(String(results[0]!.error)).toContain("not valid JSON");
    expect(String(results[1]!.error)).toContain("do not fit describe_table");
    expect(r.final?.event).toBe("answer");
    expect((r.final!.data as any).details.sql).toEqual([{ sql: "select count(*) as n from acme_sales.orders", row_count: 1 }]);
  });

  test("provider errors: a 401 is not retried and names the key; a 503 is retried, then reported", async () => {
    model.state.turns = [{ status: 401, body: '{"error":{"message":"invalid x-api-key"}}' }];
    const r = await ask(anthropic.url, viewer, { question: "anything" });
    expect(r.final!.data).toMatchObject({ code: "SX502", hint: "Check SEXTANT_LLM_API_KEY." });
    expect(String(r.final!.data.message)).toContain("HTTP 401");
    expect(model.state.requests).toHaveLength(1);

    model.reset();
    model.state.turns = [{ status: 503, retryAfter: 0 }, { status: 503, retryAfter: 0 }];
    const s = await ask(anthropic.url, viewer, { question: "anything" });
    expect(s.final!.data.code).toBe("SX502");
    expect(model.state.requests).toHaveLength(2); // one retry (SEXTANT_LLM_RETRIES=1)

    model.reset();
    model.state.turns = [{ status: 529 }, { text: "Recovered after one overload." }];
    const ok = await ask(anthropic.url, viewer, { question: "anything" });
    expect(ok.final?.event).toBe("answer");
  });

  test("a model that does not answer times out; one that answers garbage is reported", async () => {
    model.state.script = () => ({ hang: true });
    const r = await ask(openai.url, viewer, { question: "anything" });
    expect(r.final!.data.code).toBe("SX502");
    expect(String(r.final!.data.message)).toContain("did not answer within 500 ms");

    model.reset();
    model.state.turns = [{ raw: "<html>proxy error</html>" }];
    const g = await ask(openai.url, viewer, { question: "anything" });
    expect(String(g.final!.data.message)).toContain("not JSON");

    model.reset();
    model.state.turns = [{ raw: '{"choices": "nope"}' }];
    const shape = await ask(openai.url, viewer, { question: "anything" });
    expect(String(shape.final!.data.message)).toContain("unexpected shape");
  });

  test("bad requests are refused before anything streams", async () => {
    const none = await ask(anthropic.url, viewer, {});
    expect(none).toMatchObject({ status: 400, error: { code: "SX400" } });
    const long = await ask(anthropic.url, viewer, { question: "x".repeat(5000) });
    expect(long).toMatchObject({ status: 413, error: { code: "SX413" } });
    const badId = await ask(anthropic.url, viewer, { question: "hi", conversation_id: "' or 1=1 --" });
    expect(badId).toMatchObject({ status: 400, error: { code: "SX400" } });
    const anon = await fetch(`${anthropic.url}/ask`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"question":"hi"}' });
    expect(anon.status).toBe(401);
    expect(model.state.requests).toHaveLength(0);
  });
});
