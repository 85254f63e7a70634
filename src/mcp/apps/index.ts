import fs from "node:fs";
import path from "node:path";
import type { ClientCapabilities, McpServer } from "@modelcontextprotocol/server";
import { CONSOLE_DIST } from "../../console/static.ts";
import type { McpAppsHook } from "../registerTools.ts";

/** MCP Apps (SEP-1865, @modelcontextprotocol/ext-apps): the UI resource type and the extension a host declares. */
export const APP_MIME_TYPE = "text/html;profile=mcp-app";
export const APPS_EXTENSION = "io.modelcontextprotocol/ui";

/** Which tools come with which app (built by console/build.mjs from console/mcp-apps/). */
const APPS: Record<string, { uri: string; file: string; title: string; description: string }> = {
  query: {
    uri: "ui://sextant/query.html", file: "query.html", title: "Query result",
    description: "The query's rows in a grid that pages through the query tool, and a chart.",
  },
  get_model_details: {
    uri: "ui://sextant/lineage.html", file: "lineage.html", title: "dbt lineage",
    description: "The model's lineage as a zoomable graph; a node opens that model.",
  },
};

/** Whether the client declared MCP Apps support (extensions["io.modelcontextprotocol/ui"].mimeTypes has the app type). */
export function supportsApps(capabilities: ClientCapabilities | undefined): boolean {
  const ui = (capabilities as { extensions?: Record<string, { mimeTypes?: unknown }> } | undefined)?.extensions?.[APPS_EXTENSION];
  return Array.isArray(ui?.mimeTypes) && ui.mimeTypes.includes(APP_MIME_TYPE);
}

/**
 * Whether the exchange `server` is answering gets the apps: the client's declaration decides. A
 * 2026-07-28 request carries it, and so does a 2025 connection that began with initialize
 * (stdio). A 2025-era request to the stateless /mcp carries none (its initialize was answered by
 * another exchange, and nothing is kept between requests): no app there, since offering it to
 * every such client would take tools/list past its budget (test/mcp/http.test.ts), unless the
 * request opted in (appsOptIn: a server built with `optedIn`, pooled apart in src/mcp/http.ts).
 */
function offered(server: McpServer | undefined, optedIn: boolean): boolean {
  return optedIn || supportsApps(server?.server.getClientCapabilities());
}

/** The opt-in of a 2025-era HTTP client: header `Sextant-Apps: 1`, or `/mcp?apps=1` for hosts that take only a URL. */
export const APPS_HEADER = "sextant-apps";

/**
 * Whether an /mcp request opted in to the apps (see APPS_HEADER): `1`, `true`, `yes` or `on`;
 * anything else (also absent) is no. The host's own declaration still counts without it.
 */
export function appsOptIn(header: string | null | undefined, query: unknown): boolean {
  const value = header ?? (typeof query === "string" ? query : undefined);
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

const cache = new Map<string, string>();
function appHtml(file: string): string {
  let html = cache.get(file);
  if (html === undefined) {
    html = fs.readFileSync(path.join(CONSOLE_DIST, "mcp-apps", file), "utf8");
    cache.set(file, html);
  }
  return html;
}

/**
 * The MCP Apps hook for createMcpServer (src/mcp/registerTools.ts' McpAppsHook). A tool's
 * `_meta.ui.resourceUri` is decided when tools/list is answered, not when the per-request
 * server is built: the client's capabilities arrive with the request (2026-07-28 envelope, or
 * initialize), and only a client that declared MCP Apps gets it; others see `_meta: {}` and
 * results exactly as before (see `offered` for 2025-era requests to the stateless /mcp; `optedIn`:
 * that request asked for the apps explicitly). The apps talk back only through the host (tools/call of `query`
 * and `get_model_details`), with no network of their own (their resource declares no domains).
 */
export function createMcpApps(opts: { optedIn?: boolean } = {}): McpAppsHook {
  const optedIn = opts.optedIn === true;
  // toolMeta runs for each tool of a server being built, then register() for that server, all
  // synchronously in createMcpServer: the holder ties the two together.
  let building: { server?: McpServer } | undefined;
  return {
    toolMeta(tool) {
      const app = APPS[tool];
      if (!app) return undefined;
      const holder = (building ??= {});
      return Object.defineProperty({}, "ui", {
        enumerable: true,
        get: () => (offered(holder.server, optedIn) ? { resourceUri: app.uri } : undefined),
      });
    },
    register(server) {
      if (building) building.server = server;
      building = undefined;
      for (const [tool, app] of Object.entries(APPS)) {
        server.registerResource(
          `app-${tool}`,
          app.uri,
          { title: app.title, description: app.description, mimeType: APP_MIME_TYPE },
          async () => ({ contents: [{ uri: app.uri, mimeType: APP_MIME_TYPE, text: appHtml(app.file), _meta: { ui: { csp: { connectDomains: [], resourceDomains: [] }, prefersBorder: true } } }] }),
        );
      }
    },
  };
}
