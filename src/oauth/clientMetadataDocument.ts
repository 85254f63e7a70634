import type { OAuthClientInformationFull } from "@modelcontextprotocol/sdk/shared/auth.js";
import { readLimited } from "../http/readLimited.ts";
import { sourceFetch } from "../worker/hostGuard.ts";
import { redirectUriProblem } from "./redirectUri.ts";

const MAX_BYTES = 16_384;
const TIMEOUT_MS = 5_000;
const CACHE_MS = 300_000;
const CACHE_ENTRIES = 500;

/** A client_id that is a URL: a Client ID Metadata Document, fetched rather than registered. */
export function isMetadataDocumentId(clientId: string): boolean {
  return /^https?:\/\//i.test(clientId);
}

export class MetadataDocumentError extends Error {}

/** The URL, if it may be a client's metadata document: https (http only to an allowed host), a path, nothing hidden. */
function documentUrl(clientId: string, allowHosts: string[]): URL {
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    throw new MetadataDocumentError("the client_id is not a URL");
  }
  if (clientId.length > 2000 || url.href !== clientId) throw new MetadataDocumentError("the client_id URL must be at most 2,000 characters, in its normal form");
  if (url.username || url.password || url.hash) throw new MetadataDocumentError("the client_id URL must not carry credentials or a fragment");
  if (url.pathname === "/" || url.pathname === "") throw new MetadataDocumentError("the client_id URL must have a path");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  if (url.protocol !== "https:" && !(url.protocol === "http:" && allowHosts.includes(`${url.hostname}:${port}`))) {
    throw new MetadataDocumentError("the client_id URL must use https");
  }
  return url;
}

/**
 * Fetches and checks a client's metadata document: one GET, no redirects, 5 s, 16 KiB, through
 * the pipeline sources' address check (no private, loopback or metadata-service addresses
 * unless the operator allows the host:port in SEXTANT_SOURCE_ALLOW_HOSTS). The document must
 * name itself as client_id, list redirect URIs Sextant accepts, and be a public client.
 */
export async function fetchMetadataDocument(clientId: string, allowHosts: string[]): Promise<OAuthClientInformationFull> {
  const url = documentUrl(clientId, allowHosts);
  let text: string;
  try {
    const res = await sourceFetch(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(TIMEOUT_MS) }, allowHosts);
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new MetadataDocumentError(`the client metadata document answered HTTP ${res.status}`);
    }
    text = await readLimited(res, MAX_BYTES, () => new MetadataDocumentError(`the client metadata document is over ${MAX_BYTES} bytes`));
  } catch (error) {
    if (error instanceof MetadataDocumentError) throw error;
    const reason = (error as Error).name === "TimeoutError" || (error as Error).name === "AbortError" ? "it did not answer within 5 seconds" : (error as Error).message.replace(/^source /, "");
    throw new MetadataDocumentError(`the client metadata document could not be fetched: ${reason.slice(0, 300)}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new MetadataDocumentError("the client metadata document is not JSON");
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new MetadataDocumentError("the client metadata document is not a JSON object");
  if (doc.client_id !== clientId) throw new MetadataDocumentError("the client metadata document names another client_id");
  const redirects = doc.redirect_uris;
  if (!Array.isArray(redirects) || redirects.length < 1 || redirects.length > 20 || !redirects.every((u) => typeof u === "string")) {
    throw new MetadataDocumentError("the client metadata document must list 1 to 20 redirect_uris");
  }
  for (const uri of redirects as string[]) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new MetadataDocumentError(problem);
  }
  if (doc.token_endpoint_auth_method !== undefined && doc.token_endpoint_auth_method !== "none") {
    throw new MetadataDocumentError("Sextant accepts metadata-document clients as public clients only (token_endpoint_auth_method none)");
  }
  const name = typeof doc.client_name === "string" ? doc.client_name.slice(0, 200) : undefined;
  return {
    client_id: clientId,
    ...(name ? { client_name: name } : {}),
    redirect_uris: redirects as string[],
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
  };
}

/** Documents fetched lately, per process (a re-fetch elsewhere is only a request more). */
export class MetadataDocumentCache {
  private readonly entries = new Map<string, { at: number; client: Promise<OAuthClientInformationFull> }>();
  get(clientId: string, load: () => Promise<OAuthClientInformationFull>): Promise<OAuthClientInformationFull> {
    const hit = this.entries.get(clientId);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.client;
    if (this.entries.size >= CACHE_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    const client = load();
    client.catch(() => this.entries.delete(clientId));
    this.entries.set(clientId, { at: Date.now(), client });
    return client;
  }
}
