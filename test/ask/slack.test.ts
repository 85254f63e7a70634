import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createToken } from "../helpers/db.ts";
import { eventually, gql } from "../helpers/graphql.ts";
import { useServer, useTestDatabase } from "../helpers/setup.ts";
import { loadAcmeProject } from "./fixtures.ts";
import { useModelServer } from "./modelServer.ts";
import { slackHeaders, startSlackServer } from "./slackServer.ts";

const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const db = useTestDatabase();
const model = useModelServer();
let slack: Awaited<ReturnType<typeof startSlackServer>>;
beforeAll(async () => {
  await loadAcmeProject(db);
  slack = await startSlackServer();
});
afterAll(async () => {
  await slack?.close();
});
const server = useServer(db, async () => ({
  SEXTANT_LLM_URL: model.anthropicUrl, SEXTANT_LLM_MODEL: "claude-test",
  SEXTANT_SLACK_SIGNING_SECRET: SECRET, SEXTANT_SLACK_BOT_TOKEN: "xoxb-test", SEXTANT_SLACK_API_URL: slack.apiUrl,
}));

beforeAll(async () => {
  // An operator maps workspace T1 to acme, and its channel CGLOBEX to globex.
  await db.admin.query("select sextant_private.map_slack_workspace('T1', '', 'acme'), sextant_private.map_slack_workspace('T1', 'CGLOBEX', 'globex')");
  // Tenant admins link their people, through GraphQL.
  const acmeAdmin = await createToken(db, "acme", "ada@acme.test", "admin");
  await createToken(db, "acme", "ana@acme.test", "analyst");
  const linked = await gql(server.url, acmeAdmin, `mutation { createSlackPerson(input: {slackPerson: {teamId: "T1", slackUserId: "UANA", person: "ana@acme.test"}}) { slackPerson { tenantSlug linkedBy } } }`);
  expect(linked.body).toEqual({ data: { createSlackPerson: { slackPerson: { tenantSlug: "acme", linkedBy: "ada@acme.test" } } } });
  const globexAdmin = await createToken(db, "globex", "gil@globex.test", "admin");
  await createToken(db, "globex", "gus@globex.test", "viewer");
  const g = await gql(server.url, globexAdmin, `mutation { createSlackPerson(input: {slackPerson: {teamId: "T1", slackUserId: "UGUS", person: "gus@globex.test"}}) { slackPerson { tenantSlug } } }`);
  expect(g.body.errors).toBeUndefined();
}, 120_000);
beforeEach(() => {
  model.reset();
  slack.calls.length = 0;
});

function post(body: string, type: "json" | "form", headers = slackHeaders(SECRET, body, type)) {
  return fetch(`${server.url}/slack/events`, { method: "POST", headers, body });
}

function mention(user: string, channel: string, text: string, eventId = `Ev${randomBytes(4).toString("hex").toUpperCase()}`) {
  return JSON.stringify({
    type: "event_callback", team_id: "T1", event_id: eventId,
    event: { type: "app_mention", user, channel, text: `<@UBOT> ${text}`, ts: "1733130000.000200" },
  });
}

const threadReplies = (n: number) => eventually(async () => (slack.calls.length >= n ? slack.calls : undefined), 10_000);

describe("requests that are not Slack's are refused", () => {
  test("a good signature passes the URL verification handshake", async () => {
    const res = await post(JSON.stringify({ type: "url_verification", challenge: "c-123" }), "json");
    expect(await res.json()).toEqual({ challenge: "c-123" });
  });

  test("a bad signature, a missing one, an old timestamp and a replay are all 401", async () => {
    const body = mention("UANA", "CACME", "how many orders?");
    const bad = await post(body, "json", slackHeaders("not-the-secret", body, "json"));
    expect(bad.status).toBe(401);
    expect((await bad.json()).message).toContain("signature does not match");
    const none = await post(body, "json", { "content-type": "application/json" } as never);
    expect(none.status).toBe(401);
    const old = await post(body, "json", slackHeaders(SECRET, body, "json", Math.floor(Date.now() / 1000) - 301));
    expect((await old.json()).message).toContain("more than five minutes");
    // The same signed request twice: the second is a replay.
    const headers = slackHeaders(SECRET, JSON.stringify({ type: "url_verification", challenge: "x" }), "json");
    expect((await post(JSON.stringify({ type: "url_verification", challenge: "x" }), "json", headers)).status).toBe(200);
    const replay = await post(JSON.stringify({ type: "url_verification", challenge: "x" }), "json", headers);
    expect(replay.status).toBe(401);
    expect((await replay.json()).message).toContain("replay");
    expect(model.state.requests).toHaveLength(0);
    expect(slack.calls).toHaveLength(0);
  });
});

describe("who may ask", () => {
  test("an unknown Slack user gets a clear refusal in the thread; the model is never called", async () => {
    expect((await post(mention("UNOBODY", "CACME", "how many orders?"), "json")).status).toBe(200);
    const [reply] = (await threadReplies(1))!;
    expect(reply!.path).toBe("/api/chat.postMessage");
    expect(reply!.body).toMatchObject({ channel: "CACME", thread_ts: "1733130000.000200" });
    expect(reply!.body.text).toContain("not linked to a Sextant person");
    expect(model.state.requests).toHaveLength(0);
  });

  test("a user linked in another tenant is refused in this tenant's channel", async () => {
    await post(mention("UGUS", "CACME", "show me acme orders"), "json");
    const [reply] = (await threadReplies(1))!;
    expect(reply!.body.text).toContain("linked to a person of another Sextant tenant");
    expect(model.state.requests).toHaveLength(0);
  });

  test("a workspace nobody mapped is refused", async () => {
    const body = JSON.stringify({ type: "event_callback", team_id: "T9", event_id: "EvT9", event: { type: "app_mention", user: "UANA", channel: "C9", text: "hi", ts: "1.2" } });
    await post(body, "json");
    const [reply] = (await threadReplies(1))!;
    expect(reply!.body.text).toContain("not connected to Sextant");
  });

  test("only a tenant's admins link people, and only in workspaces mapped to their tenant", async () => {
    const viewer = await createToken(db, "acme", "val@acme.test", "viewer");
    const v = await gql(server.url, viewer, `mutation { createSlackPerson(input: {slackPerson: {teamId: "T1", slackUserId: "UVAL", person: "ada@acme.test"}}) { slackPerson { person } } }`);
    expect(v.body.errors?.[0]?.message).toMatch(/row-level security/);
    await db.admin.query("select sextant_private.map_slack_workspace('T2', '', 'globex')");
    const admin = await createToken(db, "acme", "adm2@acme.test", "admin");
    const cross = await gql(server.url, admin, `mutation { createSlackPerson(input: {slackPerson: {teamId: "T2", slackUserId: "UX", person: "adm2@acme.test"}}) { slackPerson { person } } }`);
    expect(cross.body.errors?.[0]?.message).toMatch(/row-level security/);
  });
});

test("operators map workspaces and link people with the CLI; a link needs the tenant's workspace", async () => {
  const env = { DATABASE_URL: db.adminUrl, LOG_LEVEL: "warn" };
  expect((await runCli(["slack", "map", "T3", "acme", "--channel", "C3"], env)).stdout).toBe("Slack T3/C3 → tenant acme\n");
  expect((await runCli(["slack", "link", "T3", "U3", "ana@acme.test", "--tenant", "acme"], env)).stdout).toBe("Slack user U3 asks as ana@acme.test in tenant acme\n");
  const wrong = await runCli(["slack", "link", "T3", "U4", "gus@globex.test", "--tenant", "globex"], env);
  expect(wrong.code).not.toBe(0);
  expect(wrong.stderr).toContain("Slack workspace T3 has no channel mapped to tenant globex");
  const { rows } = await db.admin.query("select sextant_private.slack_resolve('T3', 'C3', 'U3') as r, sextant_private.slack_resolve('T3', 'COTHER', 'U3') as other");
  expect(rows[0].r).toEqual({ tenant: "acme", person: "ana@acme.test", access_level: "analyst" });
  expect(rows[0].other.refusal).toContain("not connected to Sextant");
}, 180_000); // three CLI processes, each starting TypeScript and checking migrations

describe("a linked person asks", () => {
  test("a mention is answered in its thread: a message updated with the steps, then the answer", async () => {
    model.state.turns = [
      { calls: [{ name: "search_dbt_models", arguments: { query: "orders" } }] },
      { calls: [{ name: "query", arguments: { sql: "select count(*) as orders from acme_sales.orders" } }] },
      { text: "Acme has 50 orders. <!channel> & friends" },
    ];
    const res = await post(mention("UANA", "CACME", "how many orders do we have?"), "json");
    expect(res.status).toBe(200);
    const calls = await eventually(async () => (slack.calls.some((c) => c.body.text?.includes("50 orders")) ? slack.calls : undefined), 10_000);
    expect(calls![0]).toMatchObject({ path: "/api/chat.postMessage", authorization: "Bearer xoxb-test", body: { channel: "CACME", thread_ts: "1733130000.000200" } });
    const last = calls!.at(-1)!;
    expect(last.path).toBe("/api/chat.update");
    expect(last.body.ts).toBe(calls![0]!.answeredTs); // the "working on it" message is the one updated
    // Nothing the model writes can ping the channel.
    expect(last.body.text).toContain("Acme has 50 orders. &lt;!channel&gt; &amp; friends");
    expect(last.body.text).toContain("select count(*) as orders from acme_sales.orders");
    // The model was asked the question without the mention, as the linked person (analyst: may record learnings).
    expect(model.state.requests[0]!.toolNames).toContain("save_learning");
    const { rows } = await db.admin.query("select c.owner, c.channel, c.tenant_slug, m.body from sextant.ask_conversations c join sextant.ask_messages m on m.conversation_id = c.id where m.kind = 'question' and c.channel = 'slack'");
    expect(rows).toEqual([{ owner: "ana@acme.test", channel: "slack", tenant_slug: "acme", body: "how many orders do we have?" }]);
    const audit = await eventually(async () => (await db.admin.query("select tool, auth_method from sextant.audit_events where principal = 'ana@acme.test' and tool = 'query'")).rows[0]);
    expect(audit).toEqual({ tool: "query", auth_method: "slack" });
  });

  test("Slack's retry of an event already received is acknowledged and not answered twice", async () => {
    model.state.turns = [{ text: "Once." }];
    const body = mention("UANA", "CACME", "once?", "EvRETRY1");
    await post(body, "json");
    await eventually(async () => slack.calls.some((c) => c.body.text === "Once."), 10_000);
    const n = slack.calls.length;
    // Slack re-sends with a new signature (a later timestamp).
    const again = await post(body, "json", slackHeaders(SECRET, body, "json", Math.floor(Date.now() / 1000) + 1));
    expect(again.status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(slack.calls.length).toBe(n);
    expect(model.state.requests).toHaveLength(1);
  });

  test("an answer from several rows shows the first rows as a table, each value under its column", async () => {
    model.state.turns = [
      { calls: [{ name: "query", arguments: { sql: "select customer, amount from acme_sales.orders order by amount desc limit 3" } }] },
      { text: "The three largest orders." },
    ];
    expect((await post(mention("UANA", "CACME", "our three largest orders?"), "json")).status).toBe(200);
    const calls = await eventually(async () => (slack.calls.some((c) => c.body.text?.includes("three largest orders.")) ? slack.calls : undefined), 10_000);
    const text = calls!.find((c) => c.body.text?.includes("three largest orders."))!.body.text as string;
    expect(text).toContain("```customer\tamount\nacme customer 50\t500\nacme customer 49\t490\nacme customer 48\t480```");
  });

  test("a second mention in the thread continues the person's conversation", async () => {
    const inThread = (user: string, text: string) => JSON.stringify({
      type: "event_callback", team_id: "T1", event_id: `Ev${randomBytes(4).toString("hex").toUpperCase()}`,
      event: { type: "app_mention", user, channel: "CACME", text: `<@UBOT> ${text}`, ts: `17331300${randomBytes(1)[0]! % 10}0.000300`, thread_ts: "1733139999.000100" },
    });
    model.state.turns = [{ text: "First answer: 50 orders." }];
    await post(inThread("UANA", "how many orders?"), "json");
    await eventually(async () => slack.calls.some((c) => c.body.text?.includes("First answer")), 10_000);
    model.state.turns = [{ text: "Second answer." }];
    await post(inThread("UANA", "and by customer?"), "json");
    await eventually(async () => slack.calls.some((c) => c.body.text?.includes("Second answer")), 10_000);
    // The model saw the first question and answer before the second question.
    const msgs = model.state.requests.at(-1)!.body.messages as { role: string; content: { text?: string }[] }[];
    expect(msgs.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
    expect(msgs[1]!.content[0]!.text).toContain("First answer: 50 orders.");
    const { rows } = await db.admin.query("select count(distinct conversation_id)::int as n from sextant.ask_messages m join sextant.ask_conversations c on c.id = m.conversation_id where c.channel = 'slack' and m.body in ('how many orders?', 'and by customer?')");
    expect(rows[0].n).toBe(1);
  });

  test("/ask answers through the command's response_url", async () => {
    model.state.turns = [{ text: "Fifty." }];
    const form = new URLSearchParams({ command: "/ask", text: "how many orders?", team_id: "T1", channel_id: "CACME", user_id: "UANA", response_url: slack.hookUrl("cmd1") }).toString();
    const res = await post(form, "form");
    expect(await res.json()).toEqual({ response_type: "ephemeral", text: ":hourglass_flowing_sand: working on it…" });
    const calls = await eventually(async () => (slack.calls.length ? slack.calls : undefined), 10_000);
    expect(calls![0]).toMatchObject({ path: "/hooks/cmd1", body: { response_type: "in_channel" } });
    expect(calls![0]!.authorization).toBeUndefined(); // the bot token goes to the Web API only
    expect(calls![0]!.body.text).toContain("Fifty.");
  });

  test("/ask from an unknown user is refused at once; a response_url off Slack is refused (no SSRF)", async () => {
    const unknown = new URLSearchParams({ command: "/ask", text: "hi", team_id: "T1", channel_id: "CACME", user_id: "UNOBODY", response_url: slack.hookUrl("cmd2") }).toString();
    expect((await (await post(unknown, "form")).json()).text).toContain("not linked to a Sextant person");
    for (const target of ["http://169.254.169.254/latest/meta-data", "https://slack.com.evil.test/x", "http://hooks.slack.com/commands/1", "https://user:pw@hooks.slack.com/x"]) {
      const form = new URLSearchParams({ command: "/ask", text: "hi", team_id: "T1", channel_id: "CACME", user_id: "UANA", response_url: target }).toString();
      const res = await post(form, "form");
      expect(res.status).toBe(400);
      expect((await res.json()).message).toContain("not a Slack address");
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(slack.calls).toHaveLength(0);
    expect(model.state.requests).toHaveLength(0);
  });
});
