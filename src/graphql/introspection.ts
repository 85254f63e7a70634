import type pg from "pg";
import { makeIntrospectionQuery } from "pg-introspection";

/**
 * PostGraphile introspects the whole database: every table, column, constraint and comment of
 * every schema, to expose one (`sextant`). On a user's database with 2,000 tables that is a
 * 45 MB answer, most of a start's time and hundreds of MB of memory. This narrows its query to
 * the tables of the exposed schemas and of the tables their foreign keys join (both ways), and
 * leaves out the row types of the other tables; namespaces, functions' types, enums, domains
 * and extensions stay as they are. When the query is not the one this was written for (another
 * pg-introspection version), it runs unchanged.
 */
export function narrowIntrospectionQuery(schemas: string[]): { from: string; to: string } | undefined {
  const from = makeIntrospectionQuery();
  const list = `array[${schemas.map((s) => `'${s.replace(/'/g, "''")}'`).join(", ")}]::text[]`;
  const userSchemas = `(select namespaces._id from namespaces where nspname <> 'information_schema' and nspname not like 'pg\\_%')`;
  const exposed = `(select namespaces._id from namespaces where nspname = any(${list}))`;
  const steps: [string, string][] = [
    [`    from pg_catalog.pg_class\n    where relnamespace in ${userSchemas}\n`,
     `    from pg_catalog.pg_class\n    where relnamespace in ${exposed}\n` +
     `      or pg_class.oid in (select f.confrelid from pg_catalog.pg_constraint as f join pg_catalog.pg_class as c on c.oid = f.conrelid` +
     ` where f.contype = 'f' and c.relnamespace in ${exposed})\n` +
     `      or pg_class.oid in (select f.conrelid from pg_catalog.pg_constraint as f join pg_catalog.pg_class as c on c.oid = f.confrelid` +
     ` where f.contype = 'f' and c.relnamespace in ${exposed})\n`],
    [`    from pg_catalog.pg_constraint\n    where connamespace in ${userSchemas}\n`,
     `    from pg_catalog.pg_constraint\n    where connamespace in ${userSchemas}\n` +
     `      and (conrelid = 0 or conrelid in (select classes._id from classes))\n`],
    [`    where (typnamespace in ${userSchemas})\n`,
     `    where (typnamespace in ${userSchemas}\n` +
     `      and (pg_type.typrelid = 0 or pg_type.typrelid in (select classes._id from classes))\n` +
     `      and not exists (select from pg_catalog.pg_type as e where e.oid = pg_type.typelem and e.typrelid <> 0` +
     ` and e.typrelid not in (select classes._id from classes)))\n`],
  ];
  let to = from;
  for (const [a, b] of steps) {
    if (to.split(a).length !== 2) return undefined;
    to = to.replace(a, b);
  }
  return { from, to };
}

/**
 * A view of `pool` for PostGraphile whose clients send the narrowed introspection query in
 * place of the full one; every other query passes through untouched.
 */
export function withNarrowIntrospection(pool: pg.Pool, schemas: string[]): pg.Pool {
  const narrow = narrowIntrospectionQuery(schemas);
  if (!narrow) return pool;
  const patched = new WeakSet<pg.PoolClient>();
  const view = Object.create(pool) as pg.Pool;
  view.connect = (async () => {
    const client = await pool.connect();
    if (!patched.has(client)) {
      patched.add(client);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (config: unknown, ...rest: unknown[]) =>
        query(config && typeof config === "object" && (config as { text?: unknown }).text === narrow.from
          ? { ...config, text: narrow.to } : config, ...rest);
    }
    return client;
  }) as pg.Pool["connect"];
  return view;
}
