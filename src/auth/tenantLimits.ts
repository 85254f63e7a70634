import type pg from "pg";

const TTL_MS = 30_000;

/** Per-tenant settings the server applies to each call (read from sextant.tenants, cached briefly). */
export interface TenantLimits {
  statementTimeoutMs: number;
}

/** A cached reader of tenants' limits (changes apply within 30 s). */
export function createTenantLimits(pool: pg.Pool): (slug: string) => Promise<TenantLimits> {
  const cache = new Map<string, { at: number; limits: TenantLimits }>();
  return async (slug) => {
    const hit = cache.get(slug);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.limits;
    const { rows } = await pool.query("select statement_timeout_ms from sextant_private.tenant_limits($1)", [slug]);
    const limits = { statementTimeoutMs: rows[0]?.statement_timeout_ms ?? 15_000 };
    cache.set(slug, { at: Date.now(), limits });
    return limits;
  };
}
