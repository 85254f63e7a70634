import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { addSource, allowSourceHost, listSourceHosts } from "../../src/sources/index.ts";
import type { WorkerHandle } from "../../src/worker/index.ts";
import { createToken } from "../helpers/db.ts";
import { eventually, gql as gqlRequest } from "../helpers/graphql.ts";
import { callRows, connectHttp } from "../helpers/mcpClient.ts";
import { useSourceServer } from "../helpers/remotePg.ts";
import { startTestWorker } from "../helpers/worker.ts";

// Issue 18: tenant admins add sources themselves (GraphQL addSource, SQL sextant.add_source)
// on the hosts their operator allowed, and the worker refreshes sources on their schedule.
// Every refusal checks that nothing was made (read as admin) and that no answer holds a password.
const PASSWORD = "Tenant-Admin-Remote-Passw0rd-5531";
let allow: string[];
const { remote, db, server, withAdmin } = useSourceServer(
  `
    create role sx_reader login password '${PASSWORD}';
    create schema analytics;
    create table analytics.customers (id int primary key, name text not null);
    comment on table analytics.customers is 'People who buy';
    create table analytics.orders (id int primary key, customer_id int not null references analytics.customers (id), amount numeric not null);
    create index orders_by_customer on analytics.orders (customer_id, amount);
    insert into analytics.customers select i, 'customer ' || i from generate_series(1, 20) as i;
    insert into analytics.orders select i, 1 + i % 20, i from generate_series(1, 500) as i;
    grant usage on schema analytics to sx_reader;
    grant select on all tables in schema analytics to sx_reader;
    alter default privileges in schema analytics grant select on tables to sx_reader;
    analyze;`,
  async ({ remote }) => {
    allow = [`127.0.0.1:${remote.port}`];
  },
);
let worker: WorkerHandle | undefined;
const tokens: Record<string, string> = {};
let acme: Client;

const SNAPSHOT = `
  select (select count(*) from pg_foreign_server)::int as servers,
         (select count(*) from pg_user_mapping)::int as mappings,
         (select count(*) from pg_namespace)::int as schemas,
         (select count(*) from sextant.sources)::int as sources`;
const snapshot = async () => (await db.admin.query(SNAPSHOT)).rows[0];

async function gql(token: string, query: string, variables: Record<string, unknown> = {}) {
  return (await gqlRequest(server.url, token, query, variables)).body;
}

const ADD = `mutation($name: String!, $host: String!, $port: Int, $dbname: String!, $user: String!, $password: String!, $schemas: [String]!) {
  addSource(input: { name: $name, host: $host, port: $port, dbname: $dbname, remoteUser: $user, password: $password, remoteSchemas: $schemas }) {
    result { name status tableCount serverVersion addedBy host }
  } }`;

function addVars(over: Record<string, unknown> = {}) {
  return { name: "lake", host: "127.0.0.1", port: remote.port, dbname: "warehouse", user: "sx_reader", password: PASSWORD, schemas: ["analytics"], ...over };
}

/** Runs SQL as a tenant role over the server's login, as psql through a SET ROLE would (committed). */
async function asTenantRole<T>(role: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await db.auth.connect();
  try {
    await c.query(`set role ${role}`);
    return await fn(c);
  } finally {
    await c.query("reset role").catch(() => {});
    c.release();
  }
}

beforeAll(async () => {
  for (const [tenant, level] of [["acme", "admin"], ["acme", "analyst"], ["acme", "viewer"], ["globex", "admin"]] as const) {
    tokens[`${tenant}_${level}`] = await createToken(db, tenant, `src-${tenant}-${level}`, level);
  }
  acme = (await connectHttp(server.url, tokens.acme_admin!)).client;
});

afterAll(async () => {
  await worker?.stop();
  await acme?.close();
});

describe("the operator's allow list", () => {
  test("before any host is allowed, a tenant admin's addSource is refused and nothing is made", async () => {
    const before = await snapshot();
    const r = await gql(tokens.acme_admin!, ADD, addVars());
    expect(r.errors?.[0].message).toMatch(/not on your operator's allow list/);
    expect(JSON.stringify(r)).not.toContain(PASSWORD);
    expect(await snapshot()).toEqual(before);
  });

  test("a cloud metadata address is refused even when SEXTANT_SOURCE_ALLOW_HOSTS lists it; a private one needs that setting", async () => {
    await expect(withAdmin((c) => allowSourceHost(c, ["169.254.169.254:5432"], "acme", "169.254.169.254:5432"))).rejects.toMatchObject({ code: "SX403" });
    await expect(withAdmin((c) => allowSourceHost(c, [], "acme", "10.1.2.3"))).rejects.toThrow(/private or loopback/);
    await expect(withAdmin((c) => allowSourceHost(c, [], "acme", "localhost:5432"))).rejects.toThrow(/private or loopback/);
    await expect(withAdmin((c) => allowSourceHost(c, [], "acme", "x'; drop table acme_sales.orders; --"))).rejects.toThrow(/not host\[:port\]/);
    expect(await withAdmin((c) => listSourceHosts(c))).toEqual([]);
  });

  test("the operator allows the remote's loopback address for acme only", async () => {
    const row = await withAdmin((c) => allowSourceHost(c, allow, "acme", `127.0.0.1:${remote.port}`));
    expect(row).toMatchObject({ tenant: "acme", host: "127.0.0.1", port: remote.port, address: "127.0.0.1" });
  });
});

describe("a tenant admin's source", () => {
  test("GraphQL addSource imports it; the answer holds no password; MCP reads its tables", async () => {
    const r = await gql(tokens.acme_admin!, ADD, addVars());
    expect(r.errors).toBeUndefined();
    expect(r.data.addSource.result).toEqual({ name: "lake", status: "ok", tableCount: 2, serverVersion: expect.stringMatching(/^\d+/), addedBy: "tenant admin", host: "127.0.0.1" });
    expect(JSON.stringify(r)).not.toContain(PASSWORD);
    const q = (await callRows(acme, "query", { sql: "select count(*)::int as n, sum(amount)::int as s from lake_analytics.orders" })) as { rows: unknown[] };
    expect(q.rows).toEqual([{ n: 500, s: 125250 }]);
    // The server belongs to Sextant's owner, the mapping to the tenant's NOLOGIN __remote role.
    const { rows } = await db.admin.query(`select pg_get_userbyid(s.srvowner) as owner, m.usename
      from pg_foreign_server s join pg_user_mappings m on m.srvid = s.oid where s.srvname = 'sextant_src__acme__lake'`);
    expect(rows).toEqual([{ owner: "sextant_owner", usename: "sextant_t_acme__remote" }]);
  });

  test("the remote catalog's keys, indexes and statistics are kept for the tenant", async () => {
    const { rows } = await db.admin.query(`select table_name, description, primary_key, foreign_keys, indexes, column_stats
      from sextant.source_tables where source_name = 'lake' order by table_name`);
    expect(rows.map((r) => r.table_name)).toEqual(["customers", "orders"]);
    expect(rows[0].description).toBe("People who buy");
    expect(rows[1].primary_key).toEqual(["id"]);
    expect(rows[1].foreign_keys).toEqual([{ name: "orders_customer_id_fkey", columns: ["customer_id"], references: "lake_analytics.customers", referenced_columns: ["id"] }]);
    expect(rows[1].indexes).toContainEqual({ name: "orders_by_customer", unique: false, primary: false, columns: ["customer_id", "amount"] });
    expect(rows[1].indexes).toContainEqual({ name: "orders_pkey", unique: true, primary: true, columns: ["id"] });
    expect(rows[1].column_stats.map((s: { column: string }) => s.column)).toEqual(["amount", "customer_id", "id"]);
    expect(rows[1].column_stats[1]).toMatchObject({ column: "customer_id", null_fraction: 0, distinct: 20 });
  });

  test("the same function from SQL: refresh and remove as the tenant admin role; an operator's source is not theirs to remove", async () => {
    const refreshed = await asTenantRole("sextant_t_acme__admin", async (c) => (await c.query("select status, table_count from sextant.refresh_source('lake')")).rows[0]);
    expect(refreshed).toEqual({ status: "ok", table_count: 2 });
    await withAdmin((c) => addSource(c, allow, { tenant: "acme", name: "ops", url: remote.url("sx_reader", PASSWORD), schemas: ["analytics"] }));
    await expect(asTenantRole("sextant_t_acme__admin", (c) => c.query("select sextant.remove_source('ops')"))).rejects.toMatchObject({ code: "SX403" });
    expect((await db.admin.query("select count(*)::int as n from sextant.sources where name = 'ops'")).rows).toEqual([{ n: 1 }]);
    await withAdmin((c) => c.query("select sextant_private.remove_source('acme', 'ops')"));
  });
});

describe("refusals", () => {
  test.each([
    ["a host not on the list", { host: "db.example.com" }],
    ["the allowed host on another port", { port: 5432 }],
    ["the metadata service", { host: "169.254.169.254", port: 5432 }],
    ["a private address", { host: "10.0.0.5", port: 5432 }], // (test.each is read before the remote starts: this always was 5432)
    ["localhost, a name for the allowed address", { host: "localhost" }],
    ["IPv4-mapped IPv6 of the allowed address", { host: "::ffff:127.0.0.1" }],
  ])("%s is refused, nothing is made", async (_label, over) => {
    const before = await snapshot();
    const r = await gql(tokens.acme_admin!, ADD, addVars({ name: "sneaky", ...over }));
    expect(r.errors?.[0].message).toMatch(/not on your operator's allow list/);
    expect(await snapshot()).toEqual(before);
  });

  test("viewers and analysts are refused (GraphQL and SQL), before the allow list is even read", async () => {
    const before = await snapshot();
    for (const token of [tokens.acme_viewer!, tokens.acme_analyst!]) {
      const r = await gql(token, ADD, addVars({ name: "byanalyst" }));
      expect(r.errors?.[0].message).toMatch(/only a tenant admin may manage sources/);
      const f = await gql(token, `mutation { refreshSource(input: { name: "lake" }) { clientMutationId } }`);
      expect(f.errors?.[0].message).toMatch(/only a tenant admin/);
    }
    for (const role of ["sextant_t_acme", "sextant_t_acme__analyst"]) {
      await expect(asTenantRole(role, (c) => c.query("select sextant.add_source('x', '127.0.0.1', $1, 'warehouse', 'sx_reader', $2, array['analytics'])", [remote.port, PASSWORD])))
        .rejects.toMatchObject({ code: "SX403" });
    }
    expect(await snapshot()).toEqual(before);
  });

  test("another tenant's admin: not on its list, cannot take the name's schema, cannot refresh or remove acme's source", async () => {
    const before = await snapshot();
    const g = await gql(tokens.globex_admin!, ADD, addVars());
    expect(g.errors?.[0].message).toMatch(/not on your operator's allow list/);
    await withAdmin((c) => allowSourceHost(c, allow, "globex", `127.0.0.1:${remote.port}`));
    // Same name: its local schema lake_analytics is acme's.
    const same = await gql(tokens.globex_admin!, ADD, addVars());
    expect(same.errors?.[0].message).toMatch(/schema lake_analytics already exists/);
    // A name whose schema would be globex's own mapped schema, or a Sextant one.
    for (const [name, schemas] of [["globex", ["ops"]], ["sextant", ["analytics"]], ["t", ["acme__x"]]] as const) {
      const r = await gql(tokens.globex_admin!, ADD, addVars({ name, schemas }));
      expect(r.errors?.[0].message, name).toMatch(/already exists|reserved|invalid|plain lower-case/);
    }
    for (const m of [`refreshSource(input: { name: "lake" }) { clientMutationId }`, `removeSource(input: { name: "lake" }) { clientMutationId }`]) {
      const r = await gql(tokens.globex_admin!, `mutation { ${m} }`);
      expect(r.errors?.[0].message).toMatch(/your tenant has no source lake/);
    }
    const { rows } = await db.admin.query("select status from sextant.sources where tenant_slug = 'acme' and name = 'lake'");
    expect(rows).toEqual([{ status: "ok" }]);
    expect({ ...(await snapshot()) }).toEqual(before);
    await withAdmin((c) => c.query("select sextant_private.disallow_source_host('globex', '127.0.0.1', $1)", [remote.port]));
  });

  test("a tenant's admins may add 20 sources at most", async () => {
    // Stand-in rows (the check counts rows; 19 more beside lake make 20).
    await db.admin.query(`insert into sextant.sources (tenant_slug, name, server_name, host, port, dbname, remote_user, remote_schemas)
      select 'acme', 'filler' || i, 'sextant_src__acme__filler' || i, '127.0.0.1', 5432, 'x', 'x', array['x'] from generate_series(1, 19) as i`);
    try {
      const before = await snapshot();
      const r = await gql(tokens.acme_admin!, ADD, addVars({ name: "onetoomany" }));
      expect(r.errors?.[0].message).toMatch(/has 20 sources/);
      expect(await snapshot()).toEqual(before);
    } finally {
      await db.admin.query("delete from sextant.sources where name like 'filler%'");
    }
  });

  test("SQL-looking names and hostile strings are refused before anything is made", async () => {
    const before = await snapshot();
    for (const over of [
      { name: "x; drop table acme_sales.orders" },
      { schemas: ["analytics; drop table acme_sales.orders"] },
      { schemas: ["pg_catalog"] },
      { dbname: "warehouse' options '-c default_transaction_read_only=off" },
      { host: "127.0.0.1 options=-cdefault_transaction_read_only=off" },
    ]) {
      const r = await gql(tokens.acme_admin!, ADD, addVars({ name: "evil", ...over }));
      expect(r.errors, JSON.stringify(over)).toBeDefined();
      expect(JSON.stringify(r)).not.toContain(PASSWORD);
    }
    expect(await snapshot()).toEqual(before);
  });

  test("credentials are never returned: wrong password, GraphQL answers, audit rows, the tenant's catalogs", async () => {
    const wrong = "Not-The-Password-0000-9999";
    const r = await gql(tokens.acme_admin!, ADD, addVars({ name: "wrongpw", password: wrong }));
    expect(r.errors?.[0].message).toMatch(/source wrongpw could not be refreshed/);
    expect(JSON.stringify(r)).not.toContain(wrong);
    const all = await gql(tokens.acme_admin!, `{ listDatabases { nodes { databaseName status } } }`);
    expect(JSON.stringify(all)).not.toContain(PASSWORD);
    const audit = await db.admin.query("select count(*)::int as n from sextant.audit_events where row_to_json(audit_events)::text like '%' || $1 || '%' or row_to_json(audit_events)::text like '%' || $2 || '%'", [PASSWORD, wrong]);
    expect(audit.rows).toEqual([{ n: 0 }]);
    await expect(asTenantRole("sextant_t_acme__admin", (c) => c.query("select * from pg_user_mappings"))).rejects.toMatchObject({ code: "42501" });
    const q = await acme.callTool({ name: "query", arguments: { sql: "select * from sextant_private.source_hosts" } });
    expect(q.isError).toBe(true);
  });
});

describe("the worker's schedule", () => {
  test("remote DDL, a tick, and the catalog follows (new and dropped tables); a source not due is left alone", async () => {
    worker = await startTestWorker(db);
    await remote.sql(`create table analytics.returns (id int primary key, order_id int not null); drop table analytics.orders;`);
    await db.admin.query("update sextant.sources set last_refreshed_at = now() - interval '2 hours', last_attempt_at = null where name = 'lake'");
    await db.admin.query("select graphile_worker.add_job('sextant_tick')");
    const tables = await eventually(async () => {
      const { rows } = await db.admin.query("select array_agg(table_name::text order by table_name) as t from sextant.source_tables where source_name = 'lake'");
      return rows[0].t?.includes("returns") ? rows[0].t : null;
    }, 30000);
    expect(tables).toEqual(["customers", "returns"]);
    const src = (await db.admin.query("select status, last_refreshed_at > now() - interval '1 minute' as fresh from sextant.sources where name = 'lake'")).rows[0];
    expect(src).toEqual({ status: "ok", fresh: true });
    // Just refreshed: the next tick queues nothing for it.
    expect((await db.admin.query("select count(*)::int as n from sextant_private.due_sources()")).rows).toEqual([{ n: 0 }]);
  }, 60_000);
});
