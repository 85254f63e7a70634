--! Previous: sha1:444484c785f399b09fd8c035b87033403e74febf
--! Hash: sha1:b5960099337c986b4ab9251f2343bac6a01cc19f
--! Message: sources: row policies call current_tenant() once per statement

set local role sextant_owner;

-- 000025 wrote these two policies as `tenant_slug = sextant.current_tenant()`: a stable call in
-- the row filter, which the planner runs too (to estimate the filter) and the executor runs once
-- per row it checks wherever no index condition takes it. Every other table's policy wraps it in
-- a sub-select, an initplan run once per statement. Same rule, written the same way.
alter policy select_own_tenant on sextant.sources using (tenant_slug = (select sextant.current_tenant()));
alter policy select_own_tenant on sextant.source_tables using (tenant_slug = (select sextant.current_tenant()));

reset role;
