/**
 * Hostile credentials for the HTTP doors: each must get 401 (or 400/413 where the HTTP layer
 * refuses first) and never a 5xx, a stack or another tenant's data. Grow this list with every
 * escape found.
 */
export const hostileAuthorizationHeaders: [name: string, header: string][] = [
  ["empty bearer", "Bearer "],
  ["bearer with spaces", "Bearer  sxt_abc"],
  ["lowercase scheme, junk", "bearer junk"],
  ["token long", `Bearer sxt_${"a".repeat(8)}_${"b".repeat(4_000)}`],
  ["token longer than headers may be (431)", `Bearer sxt_${"a".repeat(8)}_${"b".repeat(20_000)}`],
  ["non-hex prefix", `Bearer sxt_zzzzzzzz_${"0".repeat(64)}`],
  ["sql quote in token", "Bearer sxt_'; select pg_sleep(5); --"],
  ["like wildcard prefix", `Bearer sxt_%%%%%%%%_${"0".repeat(64)}`],
  ["latin-1 token", "Bearer sxt_\u00e9\u00e8\u00ff_\u00e0"],
  ["three dots jwt", "Bearer a.b.c.d"],
  ["jwt of garbage", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnQiOiJhY21lIn0.AAAA"],
  ["jwt header only", "Bearer eyJhbGciOiJub25lIn0.."],
  ["basic auth", "Basic YWRtaW46YWRtaW4="],
  ["two credentials", `Bearer sxt_00000000_${"0".repeat(64)}, Bearer x`],
];

/** Tenant slugs that create_tenant must refuse with SX400 (not an SQL error, not a role). */
export const hostileSlugs: string[] = [
  "acme; drop role sextant_owner",
  "acme\u0000",
  "ACME",
  "a-b",
  "sextant_t_x",
  "x".repeat(41),
  "_x",
  "1abc",
  "a b",
  'a"b',
  "a__admin",
  "../etc",
];
