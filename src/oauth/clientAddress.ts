import { isIPv4, isIPv6 } from "node:net";

/**
 * The key the sign-in and registration throttles count a client address under: an IPv4 address
 * as is (also when it arrives IPv4-mapped, ::ffff:a.b.c.d), an IPv6 address by its /64 prefix,
 * because one host usually holds a whole /64 and could otherwise take a fresh address, and a
 * fresh budget, for every attempt.
 */
export function throttleAddress(ip: string | undefined): string {
  if (!ip) return "unknown";
  const bare = ip.replace(/%.*$/, ""); // zone id (fe80::1%eth0)
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return bare.slice(0, 100);
  const hextets = expandIPv6(bare);
  return `${hextets.slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address, as lower-case hex without leading zeros. */
function expandIPv6(ip: string): string[] {
  let text = ip.toLowerCase();
  // An IPv4 tail (::1.2.3.4, 64:ff9b::1.2.3.4) is two groups.
  const tail = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, tail.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split("::") as [string, string | undefined];
  const left = head ? head.split(":") : [];
  const right = rest ? rest.split(":") : [];
  const zeros = rest === undefined ? [] : Array(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].map((h) => parseInt(h, 16).toString(16));
}
