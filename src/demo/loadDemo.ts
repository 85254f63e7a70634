import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { projectRoot } from "../db/paths.ts";

/**
 * Creates tenant `demo` (schema `shop`) with a few thousand generated rows, unless it exists.
 * Returns true when it loaded the data now.
 */
export async function loadDemo(admin: pg.ClientBase, { force = false } = {}): Promise<boolean> {
  const { rowCount } = await admin.query("select 1 from sextant.tenants where slug = 'demo'");
  if (rowCount && !force) return false;
  await admin.query("begin");
  try {
    if (!rowCount) {
      await admin.query("select sextant_private.create_tenant('demo', 'Demo shop', array['shop'])");
    }
    await admin.query(fs.readFileSync(path.join(projectRoot, "sql/demo/shop.sql"), "utf8"));
    await admin.query("commit");
  } catch (error) {
    await admin.query("rollback");
    throw error;
  }
  return true;
}
