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

/** Where a tenant learns about its own schemas instead of reading the system catalogs. */
const CATALOG_HINT =
  "Call list_schemas, list_tables, describe_table or list_functions to see the schemas, tables, columns and functions you can read.";

/**
 * Schemas whose relations a query may not read: PostgreSQL's catalogs are readable by every
 * role and hold every tenant's schema, table, column, role and function names, statistics,
 * view and function definitions, sessions and settings. No relation there is allowed (an
 * allow-list that is empty); pg_* also covers pg_toast and pg_temp_*.
 */
function isCatalogSchema(schema: string): boolean {
  return schema === "information_schema" || schema.startsWith("pg_");
}

/** pg_* functions that only compute on their arguments or on the caller's own session. */
const ALLOWED_PG_FUNCTIONS = new Set([
  "pg_typeof", "pg_column_size", "pg_column_compression", "pg_size_pretty", "pg_size_bytes",
  "pg_input_is_valid", "pg_input_error_info", "pg_backend_pid", "pg_client_encoding",
  "pg_encoding_to_char", "pg_char_to_encoding", "pg_is_in_recovery", "pg_jit_available", "pg_trigger_depth",
]);

/** Settings current_setting() may read: how the caller's own session formats and behaves. */
const READABLE_SETTINGS = new Set([
  "timezone", "datestyle", "intervalstyle", "extra_float_digits", "client_encoding", "server_encoding",
  "server_version", "server_version_num", "lc_monetary", "lc_numeric", "lc_time", "lc_collate", "lc_ctype",
  "search_path", "transaction_read_only", "transaction_isolation", "default_transaction_read_only",
  "statement_timeout", "default_text_search_config", "standard_conforming_strings", "bytea_output",
  "max_identifier_length", "integer_datetimes",
]);

/**
 * Name lookups that answer for any object, readable or not (reg* casts, to_reg*): a relation
 * name that exists casts, one that does not raises, which tells other tenants' names apart.
 * regconfig and regdictionary (text search configurations) stay allowed.
 */
const LOOKUP_TYPES = new Set([
  "regclass", "regnamespace", "regrole", "regproc", "regprocedure", "regoper", "regoperator", "regtype", "regcollation",
]);

/**
 * Why a function reveals the catalog, or undefined. The rule: every pg_* function (server and
 * catalog introspection: pg_get_*def, pg_stat_*, pg_*_size, pg_*_is_visible, pg_has_role,
 * pg_describe_object, ...) except the value functions above; privilege and visibility tests
 * on names (has_*_privilege, row_security_active); name lookups (to_reg*, reg* casts);
 * comments (obj/col/shobj_description, format_type); settings other than the caller's own
 * formatting (current_setting); the server's address; other transactions (txid_*).
 */
function catalogReason(name: string, args: unknown[]): string | undefined {
  const n = name.toLowerCase();
  if (n.startsWith("pg_") && !ALLOWED_PG_FUNCTIONS.has(n)) {
    return "it reads PostgreSQL's catalogs or server state, which hold other tenants' objects, statistics, sessions and settings";
  }
  if (/^has_\w+_privilege$/.test(n) || n === "row_security_active") return "it tells whether objects of other tenants exist";
  if (n.startsWith("to_reg") || LOOKUP_TYPES.has(n)) return "it looks names up among every tenant's objects";
  if (["obj_description", "col_description", "shobj_description", "format_type"].includes(n)) {
    return "it reads PostgreSQL's catalogs, which hold other tenants' objects";
  }
  if (n.startsWith("inet_server_") || n.startsWith("inet_client_")) return "it reveals the server's network addresses";
  if (n.startsWith("txid_")) return "it reveals other sessions' transactions";
  if (n === "current_setting") {
    const first = args[0] as { A_Const?: { sval?: { sval?: string } } } | undefined;
    const setting = first?.A_Const?.sval?.sval;
    if (setting === undefined || !READABLE_SETTINGS.has(setting.toLowerCase())) {
      return `only these settings are readable: ${[...READABLE_SETTINGS].join(", ")} (named as a string literal)`;
    }
  }
  return undefined;
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
 * clauses, denied functions, or reads of the system catalogs (relations in pg_catalog and
 * information_schema, catalog-revealing functions, reg* name lookups). Throws SX400 saying what
 * was refused and why. It is one wall of several: the database refuses writes, other tenants'
 * data and catalog relation scans by itself too (sql/query.sql); name lookups only this wall
 * refuses.
 */
export function guardSql(sql: string): void {
  if (typeof sql !== "string" || sql.trim() === "") refuse("the SQL text is empty", ONE_STATEMENT_HINT);
  // The verdict depends on the text alone: agents send the same statements again and again, and
  // parsing costs ~1 ms. Recent verdicts are kept (a refusal is thrown again as a new error).
  const known = verdicts.get(sql);
  if (known !== undefined) {
    verdicts.delete(sql);
    verdicts.set(sql, known);
    if (known === true) return;
    throw new SextantError(known.code, known.message, known.hint);
  }
  try {
    check(sql);
    remember(sql, true);
  } catch (error) {
    if (error instanceof SextantError) remember(sql, { code: error.code, message: error.message, hint: error.hint });
    throw error;
  }
}

/** Verdicts of the last VERDICTS_KEPT distinct texts (up to 16 KB each), oldest first. */
const VERDICTS_KEPT = 500;
const verdicts = new Map<string, true | { code: string; message: string; hint?: string }>();
function remember(sql: string, verdict: true | { code: string; message: string; hint?: string }): void {
  if (sql.length > 16_384) return;
  verdicts.set(sql, verdict);
  if (verdicts.size > VERDICTS_KEPT) verdicts.delete(verdicts.keys().next().value!);
}

function check(sql: string): void {
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
    refuse(`only read-only queries are allowed; this is ${/^[AEIOU]/.test(kind) ? "an" : "a"} ${kind} statement`, ONE_STATEMENT_HINT);
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
      const schema = parts.length > 1 ? (parts.at(-2)?.String?.sval ?? "") : "";
      const reason = deniedReason(name);
      if (reason) refuse(`function ${name}() is not allowed: ${reason}`, "Rewrite the query without it.");
      const catalog = catalogReason(name, (node.args as unknown[] | undefined) ?? []);
      if (catalog) refuse(`function ${name}() is not allowed: ${catalog}`, CATALOG_HINT);
      // Sextant's internals (another tenant's runner, private functions) are not for queries,
      // and whether one exists must not show.
      if (schema === "information_schema" || schema.startsWith("sextant_")) {
        refuse(`function ${schema}.${name}() is not allowed: it is internal to PostgreSQL or Sextant`, CATALOG_HINT);
      }
    }
    if (nodeType === "RangeVar") {
      const schema = typeof node.schemaname === "string" ? node.schemaname : undefined;
      const rel = String(node.relname ?? "");
      // Unqualified pg_* names resolve to pg_catalog first (it leads every search path).
      if (schema !== undefined ? isCatalogSchema(schema) : rel.startsWith("pg_")) {
        refuse(`relation ${schema ?? "pg_catalog"}.${rel} is a system catalog; queries may not read system catalogs, which hold every tenant's objects`, CATALOG_HINT);
      }
    }
    // Type names sit under a lower-case key (TypeCast.typeName, ColumnDef.typeName, ...).
    const typeName = node.typeName as { names?: { String?: { sval?: string } }[] } | undefined;
    if (typeName?.names) {
      const names = typeName.names;
      const type = (names.at(-1)?.String?.sval ?? "").toLowerCase();
      if (LOOKUP_TYPES.has(type)) refuse(`casts to ${type} are not allowed: they look names up among every tenant's objects`, CATALOG_HINT);
    }
  });
}
