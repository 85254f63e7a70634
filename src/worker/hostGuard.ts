import { lookup } from "node:dns/promises";
import net from "node:net";
import { RunError } from "./errors.ts";

/** Loopback, private, link-local, unique-local and unspecified addresses. */
export function isPrivateAddress(address: string): boolean {
  if (net.isIPv4(address)) {
    const [a, b] = address.split(".").map(Number) as [number, number];
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  const v6 = address.toLowerCase();
  if (v6.startsWith("::ffff:")) return isPrivateAddress(v6.slice(7));
  return v6 === "::1" || v6 === "::" || v6.startsWith("fc") || v6.startsWith("fd") || v6.startsWith("fe80");
}

/**
 * Pipeline sources are written by tenant admins: they must not reach Sextant's own database,
 * the cloud metadata service or the internal network unless the operator allows the host
 * (SEXTANT_SOURCE_ALLOW_HOSTS).
 */
export async function assertReachable(host: string, allowHosts: string[]): Promise<void> {
  const bare = host.replace(/^\[|\]$/g, "");
  if (allowHosts.includes("*") || allowHosts.includes(bare)) return;
  let addresses: string[];
  try {
    addresses = net.isIP(bare) ? [bare] : (await lookup(bare, { all: true })).map((a) => a.address);
  } catch {
    throw new RunError(`source host ${bare} does not resolve`, true);
  }
  const inside = addresses.find(isPrivateAddress);
  if (inside) {
    throw new RunError(
      `source host ${bare} resolves to a private or loopback address (${inside}); pipelines may not reach it`,
      false,
      "An operator can allow it with SEXTANT_SOURCE_ALLOW_HOSTS.",
    );
  }
}
