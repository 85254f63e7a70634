import { loadModule, parseSync } from "libpg-query";
import { SextantError } from "../db/errors.ts";

await loadModule();

/**
 * Functions a query may not call, by name (any schema): they take locks or advisory locks,
 * change settings or roles, run SQL text given at execution time, reach files, other servers
 * or other sessions, sleep, signal, notify, or assign transaction ids / sequence values.
 */
const DENIED_FUNCTIONS = new Set([
  "set_config",
  "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema",
  "cursor_to_xml", "cursor_to_xmlschema",
  "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
  "schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
  "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
  "ts_stat", "ts_rewrite",
  "pg_sleep", "pg_sleep_for", "pg_sleep_until",
  "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_log_backend_memory_contexts",
  "pg_notify", "pg_listening_channels",
  "txid_current", "pg_current_xact_id", "txid_current_if_assigned", "pg_current_xact_id_if_assigned",
  "nextval", "setval",
  "pg_stat_file", "pg_file_write", "pg_file_rename", "pg_file_unlink",
  "pg_switch_wal", "pg_create_restore_point", "pg_promote", "pg_logical_emit_message",
  "pg_stat_reset", "pg_stat_reset_shared", "pg_stat_reset_single_table_counters", "pg_stat_statements_reset",
  "pg_prewarm", "pg_import_system_collations", "pg_replication_origin_create",
]);

/** Name prefixes denied as families (advisory locks, large objects, dblink, file readers, ...). */
const DENIED_PREFIXES = [
  "pg_advisory", "pg_try_advisory", "lo_", "dblink", "pg_read_", "pg_ls_", "pg_create_", "pg_drop_",
  "pg_replication_", "pg_backup_", "postgres_fdw_", "pg_stat_reset",
];

const WHY: Record<string, string> = {
  set_config: "it changes settings (including the role) for the rest of the transaction",
  query_to_xml: "it runs SQL text at execution time, outside this check",
  ts_stat: "it runs SQL text at execution time, outside this check",
  pg_sleep: "it holds a connection without doing work",
  nextval: "it changes a sequence",
};

function deniedReason(name: string): string | undefined {
  const n = name.toLowerCase();
  if (DENIED_FUNCTIONS.has(n)) {
    return WHY[n] ?? (n.includes("xml") || n.startsWith("ts_") ? WHY.query_to_xml : "it has effects beyond reading data");
  }
  const prefix = DENIED_PREFIXES.find((p) => n.startsWith(p));
  if (!prefix) return undefined;
  if (prefix.includes("advisory")) return "advisory locks outlive the query on a pooled connection";
  if (prefix === "lo_") return "large objects reach outside the tables you were given";
  if (prefix === "dblink" || prefix === "postgres_fdw_") return "it connects to other databases";
  if (prefix === "pg_read_" || prefix === "pg_ls_") return "it reads the server's files";
  return "it changes server state";
}

function refuse(message: string, hint: string): never {
  throw new SextantError("SX400", message, hint);
}

const ONE_STATEMENT_HINT =
  "Send one SELECT, WITH ... SELECT, VALUES or TABLE statement; Sextant is read-only.";

/** Walks every node of the parse tree; `visit` sees each object with its node-type key. */
function walk(node: unknown, visit: (type: string, value: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) {
    for (const child of node) walk(child, visit);
    return;
  }
  if (!node || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node)) {
    if (value && typeof value === "object" && !Array.isArray(value) && /^[A-Z]/.test(key)) {
      visit(key, value as Record<string, unknown>);
    }
    walk(value, visit);
  }
}

/**
 * The parser guard: parses with PostgreSQL's own parser (libpg-query) and accepts exactly one
 * SELECT / WITH / VALUES / TABLE statement without data-modifying CTEs, SELECT INTO, locking
 * clauses or denied functions. Throws SX400 saying what was refused and why. It is one wall of
 * several: the database refuses all of this by itself too.
 */
export function guardSql(sql: string): void {
  if (typeof sql !== "string" || sql.trim() === "") refuse("the SQL text is empty", ONE_STATEMENT_HINT);
  let tree: { stmts?: { stmt: Record<string, unknown> }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (error) {
    const e = error as { message?: string; sqlDetails?: { cursorPosition?: number } };
    const at = e.sqlDetails?.cursorPosition;
    refuse(`the SQL does not parse: ${e.message ?? "syntax error"}${at !== undefined ? ` (at character ${at + 1})` : ""}`, "Fix the syntax and send it again.");
  }
  const stmts = tree.stmts ?? [];
  if (stmts.length !== 1) {
    refuse(`the SQL has ${stmts.length} statements; exactly one is allowed`, ONE_STATEMENT_HINT);
  }
  const stmt = stmts[0]!.stmt;
  const type = Object.keys(stmt)[0] ?? "unknown";
  if (type !== "SelectStmt") {
    const kind = type.replace(/Stmt$/, "").replace(/([a-z])([A-Z])/g, "$1 $2").toUpperCase();
    refuse(`only read-only queries are allowed; this is a ${kind} statement`, ONE_STATEMENT_HINT);
  }
  walk(stmt, (nodeType, node) => {
    if (nodeType === "SelectStmt") {
      if (node.intoClause) refuse("SELECT INTO creates a table; it is not allowed", "Drop the INTO clause.");
      if (Array.isArray(node.lockingClause) && node.lockingClause.length > 0) {
        refuse("locking clauses (FOR UPDATE / FOR SHARE ...) are not allowed", "Remove the FOR UPDATE / FOR SHARE clause; reads need no locks.");
      }
    }
    if (nodeType === "CommonTableExpr") {
      const query = node.ctequery as Record<string, unknown> | undefined;
      const inner = query ? Object.keys(query)[0] : undefined;
      if (inner && inner !== "SelectStmt") {
        refuse(`the WITH query "${String(node.ctename)}" modifies data (${inner.replace(/Stmt$/, "").toUpperCase()})`, "Only SELECT queries may appear in WITH.");
      }
    }
    if (nodeType === "FuncCall") {
      const parts = (node.funcname as { String?: { sval?: string } }[] | undefined) ?? [];
      const name = parts.at(-1)?.String?.sval ?? "";
      const reason = deniedReason(name);
      if (reason) refuse(`function ${name}() is not allowed: ${reason}`, "Rewrite the query without it.");
    }
  });
}
