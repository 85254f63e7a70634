import { beforeAll, beforeEach, expect, test } from "vitest";
import { createToken } from "../helpers/db.ts";
import { useServer, useTestDatabase } from "../helpers/setup.ts";
import { ask } from "./fixtures.ts";
import { useModelServer } from "./modelServer.ts";
import { measure, report } from "./quality.ts";

// Budgets per question (tokens, tool calls, time, response size) and per tenant and day
// (questions, tokens). The step budget and provider failures are in ask.test.ts.
const db = useTestDatabase();
const model = useModelServer();
const tight = useServer(db, async () => ({
  SEXTANT_LLM_URL: model.openaiUrl, SEXTANT_LLM_MODEL: "gpt-test",
  SEXTANT_ASK_MAX_TOKENS: "250", SEXTANT_ASK_MAX_TOOL_CALLS: "3", SEXTANT_ASK_MAX_SECONDS: "4",
  SEXTANT_LLM_MAX_RESPONSE_BYTES: "5000", SEXTANT_LLM_RETRIES: "0",
}));
const capped = useServer(db, async () => ({ SEXTANT_LLM_URL: model.openaiUrl, SEXTANT_LLM_MODEL: "gpt-test", SEXTANT_ASK_TENANT_TOKENS_PER_DAY: "150" }));
const none = useServer(db);
let acme: string;
let globex: string;
let demo: string;

beforeAll(async () => {
  acme = await createToken(db, "acme", "ann@acme.test", "viewer");
  globex = await createToken(db, "globex", "gia@globex.test", "viewer");
  demo = await createToken(db, "demo", "dee@demo.test", "viewer");
}, 120_000);
beforeEach(() => model.reset());

const schemas = { calls: [{ name: "list_schemas", arguments: {} }], usage: 100 };

test("without SEXTANT_LLM_URL nothing is called and the refusal says what to set", async () => {
  const r = await ask(none.url, acme, { question: "hi" });
  expect(r.status).toBe(404);
  expect(r.error).toMatchObject({ code: "SX404", message: "asking in plain English is not set up on this server" });
  expect(r.error!.hint).toContain("SEXTANT_LLM_URL");
});

test("a question's token budget stops it", async () => {
  model.state.script = () => ({ calls: [{ name: "list_schemas", arguments: {} }], usage: 200 });
  const r = await ask(tight.url, demo, { question: "tokens" });
  expect(r.final!.data).toMatchObject({ code: "SX413", message: "stopped: this question used 400 model tokens, more than the 250 allowed", steps: 2 });
});

test("a question's tool-call budget stops it, before the call over it runs", async () => {
  model.state.script = () => ({ calls: [{ name: "list_schemas", arguments: {} }, { name: "list_schemas", arguments: {} }], usage: 10 });
  const r = await ask(tight.url, demo, { question: "calls" });
  expect(r.final!.data).toMatchObject({ code: "SX413", message: "stopped after 3 tool calls without an answer" });
  expect(r.events.filter((e) => e.event === "tool_call")).toHaveLength(3);
});

test("a question's time budget stops a model that does not answer", async () => {
  model.state.script = () => ({ hang: true });
  const started = Date.now();
  const r = await ask(tight.url, demo, { question: "time" });
  expect(r.final!.data).toMatchObject({ code: "SX413", message: "stopped after 4 seconds without an answer" });
  expect(Date.now() - started).toBeLessThan(10_000);
});

test("a response over the byte cap is refused, not read", async () => {
  model.state.turns = [{ bytes: 6000 }];
  const r = await ask(tight.url, demo, { question: "big" });
  expect(r.final!.data.code).toBe("SX502");
  expect(String(r.final!.data.message)).toContain("more than the 5000 bytes allowed");
});

test("a tenant's daily question budget refuses the question before anything streams", async () => {
  await db.admin.query("insert into sextant_private.ask_usage (tenant_slug, day, questions) values ('acme', (now() at time zone 'utc')::date, 1000) on conflict (tenant_slug, day) do update set questions = 1000");
  const r = await ask(tight.url, acme, { question: "one more" });
  expect(r).toMatchObject({ status: 429, error: { code: "SX429", message: "your tenant has used its questions for today (1000 questions or 20000000 model tokens a day)" } });
  await db.admin.query("delete from sextant_private.ask_usage where tenant_slug = 'acme'");
});

test("a tenant's daily token budget stops its questions, and only that tenant's", async () => {
  model.state.turns = [schemas, schemas, { text: "never reached" }];
  const r = await ask(capped.url, globex, { question: "first" });
  expect(r.final!.data).toMatchObject({ code: "SX429", message: "stopped: your tenant has used its 150 model tokens for today" });
  // The next question is refused before the model is called ...
  const before = model.state.requests.length;
  const refused = await ask(capped.url, globex, { question: "second" });
  expect(refused).toMatchObject({ status: 429, error: { code: "SX429" } });
  expect(refused.error!.detail).toMatch(/^Retry after \d+ seconds\.$/);
  expect(model.state.requests.length).toBe(before);
  // ... while another tenant still asks.
  model.state.turns = [{ text: "acme is fine", usage: 10 }];
  const other = await ask(capped.url, acme, { question: "still here?" });
  expect(other.final?.event).toBe("answer");
  const { rows } = await db.admin.query("select tenant_slug, questions, tokens::int from sextant_private.ask_usage where tenant_slug = 'globex'");
  expect(rows).toEqual([{ tenant_slug: "globex", questions: 1, tokens: 200 }]);
});

test("the quality script (README) scores answers by the figures they must contain", async () => {
  model.state.script = (req) => {
    const q = JSON.stringify(req.body.messages);
    if (q.includes("how many")) return { text: "There are 50 orders." };
    if (q.includes("largest")) return { text: "The largest is 400." };
    return { calls: [{ name: "list_schemas", arguments: {} }], usage: 200 }; // runs into the token budget
  };
  const outcomes = await measure(tight.url, demo, [
    { question: "how many orders?", expect: ["50"] },
    { question: "largest order?", expect: ["500"] },
    { question: "loop", expect: ["x"] },
  ]);
  expect(outcomes.map((o) => o.verdict)).toEqual(["correct", "wrong", "stopped"]);
  expect(report(outcomes)).toContain("1/3 correct, 1 wrong, 1 stopped");
});
