import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { Readable } from "node:stream";
import { RunError } from "./errors.ts";

/**
 * An IPv6 address as 8 numbers, from any textual form (`::`, zero-padding, an embedded dotted
 * IPv4 tail, upper case); undefined when it is not one.
 */
function ipv6Words(text: string): number[] | undefined {
  let s = text.toLowerCase().replace(/%.*$/, "");
  if (!net.isIPv6(s)) return undefined;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split(".").map(Number) as [number, number, number, number];
    s = s.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.includes("::") ? (s.split("::") as [string, string]) : [s, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : new Array(8 - left.length - right.length).fill("0");
  const words = [...left, ...fill, ...right].map((w) => parseInt(w, 16));
  return words.length === 8 && words.every((w) => w >= 0 && w <= 0xffff) ? words : undefined;
}

/**
 * The address as pipelines' checks see it: IPv4 as is; an IPv6 address that carries an IPv4
 * one (mapped ::ffff:a.b.c.d in every textual form, compatible ::a.b.c.d, NAT64 64:ff9b::/96,
 * 6to4 2002::/16) as that IPv4 address; any other IPv6 in its canonical compressed form.
 */
export function normalizeAddress(address: string): string {
  const bare = address.replace(/^\[|\]$/g, "");
  if (net.isIPv4(bare)) return bare;
  const w = ipv6Words(bare);
  if (!w) return bare;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zeros = (n: number) => w.slice(0, n).every((x) => x === 0);
  if (zeros(5) && w[5] === 0xffff) return v4(w[6]!, w[7]!); // ::ffff:a.b.c.d
  if (zeros(4) && w[4] === 0xffff && w[5] === 0) return v4(w[6]!, w[7]!); // ::ffff:0:a.b.c.d (SIIT)
  if (zeros(6) && (w[6] !== 0 || w[7]! > 1)) return v4(w[6]!, w[7]!); // ::a.b.c.d (deprecated compatible)
  if (w[0] === 0x64 && w[1] === 0xff9b && w.slice(2, 6).every((x) => x === 0)) return v4(w[6]!, w[7]!); // NAT64
  if (w[0] === 0x2002) return v4(w[1]!, w[2]!); // 6to4
  // Canonical text (so "0:0:0:0:0:0:0:1" and "::1" compare equal).
  const url = new URL(`http://[${bare}]/`);
  return url.hostname.replace(/^\[|\]$/g, "");
}

/**
 * Whether an address is anything but a public unicast one: loopback, private, shared (CGNAT),
 * link-local, unique-local, site-local, multicast, broadcast, benchmark, reserved, unspecified,
 * in any IPv6 form that carries one of those IPv4 addresses.
 */
export function isPrivateAddress(address: string): boolean {
  const a = normalizeAddress(address);
  if (net.isIPv4(a)) {
    const [x, y, z] = a.split(".").map(Number) as [number, number, number];
    return x === 0 || x === 10 || x === 127 || x >= 224 || (x === 169 && y === 254) || (x === 172 && y >= 16 && y <= 31)
      || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127) || (x === 198 && (y === 18 || y === 19))
      || (x === 192 && y === 0 && (z === 0 || z === 2)) || (x === 198 && y === 51 && z === 100) || (x === 203 && y === 0 && z === 113);
  }
  const w = ipv6Words(a);
  if (!w) return true; // not an address at all: never trusted
  const top = w[0]!;
  return w.every((x, i) => x === 0 || (i === 7 && x === 1)) // :: and ::1
    || (top & 0xfe00) === 0xfc00 // fc00::/7 unique local
    || (top & 0xffc0) === 0xfe80 // link local
    || (top & 0xffc0) === 0xfec0 // site local
    || (top & 0xff00) === 0xff00 // multicast
    || top === 0x0100 // discard 100::/64
    || (top === 0x2001 && w[1]! < 0x0200) // 2001::/23 (Teredo, benchmarking, ORCHID...)
    || (top === 0x2001 && w[1] === 0x0db8); // documentation
}

/** The default port of a source's scheme (an allow-list entry without a port means this one). */
export function defaultPort(protocol: string): number {
  return protocol === "https:" ? 443 : protocol === "http:" ? 80 : 5432;
}

/**
 * Whether the operator allows `host` on `port` (SEXTANT_SOURCE_ALLOW_HOSTS): "*" allows all,
 * "host:port" that port, "host:*" every port of the host, and a bare "host" only the scheme's
 * default port — an allowed host is not allowed on every port (its database, its admin ports).
 * IPv6 entries are written in brackets: "[::1]:8080".
 */
export function isAllowed(host: string, port: number, fallbackPort: number, allowHosts: string[]): boolean {
  const wanted = normalizeAddress(host).toLowerCase();
  for (const entry of allowHosts) {
    if (entry === "*") return true;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+|\*))?$/.exec(entry.trim());
    if (!m) continue;
    if (normalizeAddress(m[1]!).toLowerCase() !== wanted) continue;
    if (m[2] === "*" || Number(m[2] ?? fallbackPort) === port) return true;
  }
  return false;
}

/**
 * Pipeline sources are written by tenant admins: they must not reach Sextant's own database,
 * the cloud metadata service or the internal network unless the operator allows the host and
 * port. Resolves `host` once and returns the address to connect to — the one that was checked
 * (connecting by name again would let DNS answer differently the second time).
 */
export async function resolveReachable(host: string, port: number, fallbackPort: number, allowHosts: string[]): Promise<{ address: string; family: 4 | 6 }> {
  const bare = host.replace(/^\[|\]$/g, "");
  let addresses: { address: string; family: number }[];
  if (net.isIP(bare)) {
    addresses = [{ address: bare, family: net.isIP(bare) }];
  } else {
    try {
      addresses = await lookup(bare, { all: true, verbatim: true });
    } catch {
      throw new RunError(`source host ${bare} does not resolve`, true);
    }
    if (addresses.length === 0) throw new RunError(`source host ${bare} does not resolve`, true);
  }
  const allowed = isAllowed(bare, port, fallbackPort, allowHosts);
  if (!allowed) {
    const inside = addresses.find((a) => isPrivateAddress(a.address));
    if (inside) {
      throw new RunError(
        `source host ${bare} resolves to a private or loopback address (${inside.address}); pipelines may not reach it`,
        false,
        "An operator can allow it with SEXTANT_SOURCE_ALLOW_HOSTS (host:port).",
      );
    }
  }
  // One address is dialled (the checked one, no second lookup); IPv4 first, as most services
  // that answer on both listen there.
  const first = [...addresses].sort((a, b) => a.family - b.family)[0]!;
  // An IPv4 address written as IPv6 is dialled as IPv4: the address that was checked.
  const normal = normalizeAddress(first.address);
  return net.isIPv4(normal) ? { address: normal, family: 4 } : { address: first.address, family: 6 };
}

/** Checks a host like resolveReachable, without keeping the address. */
export async function assertReachable(host: string, allowHosts: string[], port = 80, fallbackPort = 80): Promise<void> {
  await resolveReachable(host, port, fallbackPort, allowHosts);
}

/**
 * GET `url` for a pipeline source, connected to the address that passed the host check (the
 * DNS answer that was checked is the one dialled; TLS still verifies the host name). Redirects
 * are not followed (a 3xx is an answer like any other). Returns a web Response.
 */
export async function sourceFetch(
  url: URL,
  init: { headers?: Record<string, string>; signal?: AbortSignal },
  allowHosts: string[],
): Promise<Response> {
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RunError(`source URL scheme ${url.protocol} is not http or https`);
  const fallback = defaultPort(url.protocol);
  const port = url.port ? Number(url.port) : fallback;
  const target = await resolveReachable(url.hostname, port, fallback, allowHosts);
  const mod = url.protocol === "https:" ? https : http;
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  return await new Promise<Response>((resolve, reject) => {
    const req = mod.request(
      {
        protocol: url.protocol,
        host: target.address,
        family: target.family,
        port,
        path: url.pathname + url.search,
        method: "GET",
        headers: { host: url.host, ...(init.headers ?? {}) },
        servername: net.isIP(hostname) ? undefined : hostname,
        signal: init.signal,
        // No DNS at connect time: the checked address is dialled.
        lookup: (_name: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
          opts?.all ? cb(null, [{ address: target.address, family: target.family }]) : cb(null, target.address, target.family),
      } as https.RequestOptions,
      (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 599) {
          res.destroy();
          reject(new RunError(`GET ${url.pathname}: the source answered status ${status}`, true));
          return;
        }
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (v === undefined) continue;
          for (const value of Array.isArray(v) ? v : [v]) headers.append(k, value);
        }
        const noBody = status === 204 || status === 205 || status === 304;
        if (noBody) res.resume();
        const body = noBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
        resolve(new Response(body, { status, statusText: res.statusMessage ?? "", headers }));
      },
    );
    req.on("error", (e) => reject(e));
    req.end();
  });
}
