import type pg from "pg";

const TTL_MS = 30_000;

/** Per-tenant settings the server applies to each call (from sextant.tenants). */
export interface TenantLimits {
  statementTimeoutMs: number;
  ratePerMinute: number;
  ratePerHour: number;
  tenantRatePerDay: number;
}

export interface TenantLimitsCache {
  get(slug: string): Promise<TenantLimits>;
  /** Forget everything (a tenant changed: see the sextant_auth notifications). */
  clear(): void;
}

/** A cached reader of tenants' limits: cleared on change notifications, else kept 30 s. */
export function createTenantLimits(pool: Pick<pg.ClientBase, "query">): TenantLimitsCache {
  const cache = new Map<string, { at: number; limits: Promise<TenantLimits> }>();
  return {
    get(slug) {
      const hit = cache.get(slug);
      if (hit && Date.now() - hit.at < TTL_MS) return hit.limits;
      const limits = pool
        .query("select * from sextant_private.tenant_limits($1)", [slug])
        .then(({ rows }) => {
          const t = rows[0] ?? {};
          return {
            statementTimeoutMs: t.statement_timeout_ms ?? 15_000,
            ratePerMinute: t.rate_per_minute ?? 120,
            ratePerHour: t.rate_per_hour ?? 3000,
            tenantRatePerDay: t.tenant_rate_per_day ?? 100_000,
          };
        });
      limits.catch(() => cache.delete(slug));
      cache.set(slug, { at: Date.now(), limits });
      return limits;
    },
    clear: () => cache.clear(),
  };
}
