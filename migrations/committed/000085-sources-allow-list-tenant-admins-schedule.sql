--! Previous: sha1:45a908c45fe87f2fe8e029ea6d6d0d8343634adf
--! Hash: sha1:ac7606a260b7fca982b246e1e4119fe228e1933d
--! Message: sources: the operator's allow list for tenant admins, and a refresh schedule per source

set local role sextant_owner;

-- Hosts an operator lets a tenant's admins add sources on (`sextant source allow`): one row per
-- tenant, host and port, with the address the CLI's check passed when it was allowed. A
-- tenant admin's source connects to that address (host is used for TLS only), so a later DNS
-- answer cannot move it elsewhere. Only the operator's functions read or write it.
create table if not exists sextant_private.source_hosts (
  tenant_slug text not null references sextant.tenants (slug) on delete cascade,
  host text not null check (host ~ '^([a-z0-9.-]+|[0-9a-f:.]+)$' and length(host) <= 253),
  port integer not null check (port between 1 and 65535),
  hostaddr text not null check (hostaddr ~ '^[0-9a-f:.]+$'),
  added_at timestamptz not null default now(),
  primary key (tenant_slug, host, port)
);
revoke all on sextant_private.source_hosts from public;

-- How often the worker refreshes a source (null: only on demand), and when it last tried (a
-- failing source is retried at the same pace, not every tick).
alter table sextant.sources add column if not exists refresh_every interval default interval '1 hour'
  check (refresh_every is null or refresh_every between interval '5 minutes' and interval '30 days');
alter table sextant.sources add column if not exists last_attempt_at timestamptz;
alter table sextant.sources add column if not exists added_by text not null default 'operator'
  check (added_by in ('operator', 'tenant admin'));

-- What the remote catalog says about each imported table beyond comments and the primary key:
-- foreign keys, indexes and per-column statistics (read at refresh time; shown by describe_table).
alter table sextant.source_tables add column if not exists foreign_keys jsonb not null default '[]';
alter table sextant.source_tables add column if not exists indexes jsonb not null default '[]';
alter table sextant.source_tables add column if not exists column_stats jsonb not null default '[]';

reset role;
