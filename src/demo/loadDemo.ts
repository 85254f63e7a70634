import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { projectRoot } from "../db/paths.ts";
import { inTransaction } from "../db/transaction.ts";

/**
 * Creates tenant `demo` (schema `shop`) with a few thousand generated rows, unless it exists.
 * Returns true when it loaded the data now.
 */
export async function loadDemo(admin: pg.ClientBase, { force = false } = {}): Promise<boolean> {
  const { rowCount } = await admin.query("select 1 from sextant.tenants where slug = 'demo'");
  if (rowCount && !force) return false;
  await inTransaction(admin, async () => {
    if (!rowCount) {
      await admin.query("select sextant_private.create_tenant('demo', 'Demo shop', array['shop'])");
    }
    await admin.query(fs.readFileSync(path.join(projectRoot, "sql/demo/shop.sql"), "utf8"));
  });
  return true;
}
