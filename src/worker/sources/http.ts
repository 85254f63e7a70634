import { setTimeout as sleep } from "node:timers/promises";
import { readLimited } from "../../http/readLimited.ts";
import { RunError } from "../errors.ts";
import { sourceFetch } from "../hostGuard.ts";
import { StageWriter } from "../stageWriter.ts";
import type { SourceKind } from "./kind.ts";

export type Pagination =
  | { type: "none" }
  | { type: "page"; param?: string; start?: number; size_param?: string; size?: number }
  | { type: "offset"; param?: string; limit_param?: string; limit?: number }
  | { type: "cursor"; param?: string; cursor_path: string }
  | { type: "next_link"; next_path?: string };

export interface HttpSource {
  kind: "http";
  base_url: string;
  headers?: Record<string, string>;
  pagination?: Pagination;
  records_path?: string;
  requests_per_second?: number;
  max_retries?: number;
  timeout_ms?: number;
  max_page_bytes?: number;
}

export interface HttpEntity {
  name: string;
  path?: string;
  params?: Record<string, string | number | boolean>;
  records_path?: string;
  pagination?: Pagination;
}

export interface Page {
  records: Record<string, unknown>[];
  page: number;
  requests: number;
  retries: number;
}

/** "data.items" → body.data.items; "" or undefined → the body itself. */
export function atPath(body: unknown, path: string | undefined): unknown {
  if (!path) return body;
  let value = body;
  for (const key of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function nextFromLinkHeader(link: string | null): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

/** Spaces requests out to the source's rate limit: one per run, shared by all its entities. */
export class Pacer {
  private next = 0;
  constructor(private readonly perSecond: number | undefined) {}
  async wait(signal: AbortSignal): Promise<void> {
    if (!this.perSecond || this.perSecond <= 0) return;
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + 1000 / this.perSecond;
    if (at > now) await sleep(at - now, undefined, { signal });
  }
}

/**
 * Reads an entity page by page from a JSON API: pagination by page number, offset, cursor or
 * next link; retries 429 and 5xx with backoff (honouring Retry-After); refuses pages over
 * max_page_bytes, bodies that are not JSON and records that are not objects.
 */
export async function* readHttpPages(
  source: HttpSource,
  entity: HttpEntity,
  opts: { signal: AbortSignal; allowHosts: string[]; onRetry?: (why: string) => void; pacer?: Pacer },
): AsyncGenerator<Page> {
  if (typeof source.base_url !== "string") throw new RunError("an http source needs base_url");
  let url: URL;
  try {
    url = new URL(entity.path ?? "", source.base_url.endsWith("/") ? source.base_url : source.base_url + "/");
    if (entity.path?.startsWith("/")) url = new URL(entity.path, source.base_url);
  } catch {
    throw new RunError(`source URL ${source.base_url} ${entity.path ?? ""} is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RunError(`source URL scheme ${url.protocol} is not http or https`);
  // The source's headers (often secrets) go to base_url's origin only: an entity path that is
  // a whole URL elsewhere would carry them there.
  if (url.origin !== new URL(source.base_url).origin) {
    throw new RunError(`the path of ${entity.name} leaves the source's origin (${url.origin})`, false, "Entity paths are relative to base_url.");
  }
  for (const [k, v] of Object.entries(entity.params ?? {})) url.searchParams.set(k, String(v));

  const pagination: Pagination = entity.pagination ?? source.pagination ?? { type: "none" };
  const recordsPath = entity.records_path ?? source.records_path;
  const maxRetries = source.max_retries ?? 5;
  const maxBytes = source.max_page_bytes ?? 50 * 1024 * 1024;
  const timeoutMs = source.timeout_ms ?? 30000;
  const pacer = opts.pacer ?? new Pacer(source.requests_per_second);
  let requests = 0;
  let retries = 0;

  const get = async (target: URL): Promise<{ body: unknown; link: string | null }> => {
    for (let attempt = 0; ; attempt++) {
      await pacer.wait(opts.signal);
      requests++;
      let res: Response;
      try {
        // Connects to the address the host check passed (no second DNS answer); no redirects.
        res = await sourceFetch(target, {
          headers: { accept: "application/json", ...(source.headers ?? {}) },
          signal: AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)]),
        }, opts.allowHosts);
      } catch (error) {
        if (opts.signal.aborted || (error instanceof RunError && !error.transient)) throw error;
        if (attempt >= maxRetries) throw new RunError(`GET ${shown(target)}: ${(error as Error).message} (after ${attempt + 1} tries)`, true);
        retries++;
        opts.onRetry?.(`network error: ${(error as Error).message}`);
        await sleep(backoff(attempt), undefined, { signal: opts.signal });
        continue;
      }
      if (res.status === 429 || res.status >= 500) {
        await res.body?.cancel();
        if (attempt >= maxRetries) {
          throw new RunError(`GET ${shown(target)} answered ${res.status} ${res.statusText} (after ${attempt + 1} tries)`, true);
        }
        retries++;
        opts.onRetry?.(`HTTP ${res.status}`);
        const after = Number(res.headers.get("retry-after"));
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 60000) : backoff(attempt), undefined, { signal: opts.signal });
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new RunError(`GET ${shown(target)} answered ${res.status} ${res.statusText}`, false,
          res.status === 401 || res.status === 403 ? "Check the source's credentials (pipeline secrets)." : undefined);
      }
      const text = await readLimited(res, maxBytes, (declared) => new RunError(declared
        ? `a page of ${entity.name} is ${declared} bytes, over the limit of ${maxBytes}`
        : `a page of ${entity.name} is over the limit of ${maxBytes} bytes`, false, "Use a smaller page size, or raise max_page_bytes."));
      try {
        return { body: JSON.parse(text), link: res.headers.get("link") };
      } catch {
        throw new RunError(`GET ${shown(target)} did not return JSON (starts with ${JSON.stringify(text.slice(0, 40))})`);
      }
    }
  };

  const recordsOf = (body: unknown): Record<string, unknown>[] => {
    const records = atPath(body, recordsPath);
    if (!Array.isArray(records)) {
      throw new RunError(`the response has no array at ${recordsPath ? `"${recordsPath}"` : "its top level"}`, false,
        "Set records_path to where the records are, e.g. \"data\".");
    }
    for (const r of records) {
      if (r === null || typeof r !== "object" || Array.isArray(r)) {
        throw new RunError(`the records of ${entity.name} are not JSON objects (found ${JSON.stringify(r)?.slice(0, 40)})`);
      }
    }
    return records as Record<string, unknown>[];
  };

  let page = 0;
  let target: URL | undefined = new URL(url);
  let pageNumber = pagination.type === "page" ? (pagination.start ?? 1) : 0;
  let offset = 0;
  while (target) {
    if (pagination.type === "page") {
      target.searchParams.set(pagination.param ?? "page", String(pageNumber));
      if (pagination.size_param && pagination.size) target.searchParams.set(pagination.size_param, String(pagination.size));
    } else if (pagination.type === "offset") {
      target.searchParams.set(pagination.param ?? "offset", String(offset));
      target.searchParams.set(pagination.limit_param ?? "limit", String(pagination.limit ?? 100));
    }
    const { body, link } = await get(target);
    const records = recordsOf(body);
    page++;
    yield { records, page, requests, retries };
    switch (pagination.type) {
      case "none":
        target = undefined;
        break;
      case "page":
        pageNumber++;
        if (records.length === 0 || (pagination.size && records.length < pagination.size)) target = undefined;
        break;
      case "offset":
        offset += records.length;
        if (records.length < (pagination.limit ?? 100)) target = undefined;
        break;
      case "cursor": {
        const cursor = atPath(body, pagination.cursor_path);
        if (cursor === null || cursor === undefined || cursor === "" || records.length === 0) target = undefined;
        else target.searchParams.set(pagination.param ?? "cursor", String(cursor));
        break;
      }
      case "next_link": {
        const next = pagination.next_path ? atPath(body, pagination.next_path) : nextFromLinkHeader(link);
        if (typeof next !== "string" || next === "" || records.length === 0) {
          target = undefined;
        } else {
          const resolved = new URL(next, target);
          if (resolved.host !== url.host) throw new RunError(`the next link of ${entity.name} leaves the source's host (${resolved.host})`);
          target = resolved;
        }
        break;
      }
      default:
        throw new RunError(`pagination type ${(pagination as { type: string }).type} is not one of none, page, offset, cursor, next_link`);
    }
  }
}

/**
 * A request URL as errors show it: the path and the names of its parameters, never their
 * values (a parameter may hold a secret; run errors are shown to every viewer of the tenant).
 */
export function shown(url: URL): string {
  const names = [...new Set(url.searchParams.keys())];
  return url.pathname + (names.length ? `?${names.map((k) => `${k}=…`).join("&")}` : "");
}

function backoff(attempt: number): number {
  return Math.min(200 * 2 ** attempt, 10000) * (0.75 + Math.random() / 2);
}

/**
 * Source kind `http`: each entity read page by page (readHttpPages) into a staging table whose
 * columns are inferred from the records (StageWriter). One pacer per run: requests_per_second
 * holds across entities.
 */
export const httpSource: SourceKind = {
  open(source, deps) {
    const pacer = new Pacer((source as { requests_per_second?: number }).requests_per_second);
    return async ({ client, schema, entity, progress }) => {
      const writer = new StageWriter(client, schema, entity.name);
      for await (const page of readHttpPages(source as unknown as HttpSource, entity as HttpEntity, {
        signal: deps.signal,
        allowHosts: deps.allowHosts,
        pacer,
        onRetry: (why) => deps.log.info({ entity: entity.name, why }, "retrying a request"),
      })) {
        await writer.write(page.records);
        await progress({ rows: writer.rows, pages: page.page, requests: page.requests, retries: page.retries });
      }
      await writer.finish();
      return writer.rows;
    };
  },
};
