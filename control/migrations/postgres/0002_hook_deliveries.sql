-- Replay protection for webhook schemes whose signature covers the body only (GitHub's):
-- a captured delivery re-sent under a fresh delivery id verifies again. A hook with a
-- dedupe window answers a body it saw within that window as a duplicate of the delivery
-- that first brought it.

-- NULL: no dedupe. Existing GitHub hooks get the default window of new ones.
ALTER TABLE durable.hooks ADD COLUMN dedupe_window_secs integer
    CHECK (dedupe_window_secs BETWEEN 1 AND 86400);
UPDATE durable.hooks SET dedupe_window_secs = 300 WHERE scheme = 'github';

-- The body digests a hook saw, each with the delivery that first brought it: a repeat
-- starts that delivery's run again, which its workflow id makes idempotent, so a repeat
-- finds the run even if the first request died between this row and the run's start. The
-- window is applied when reading; one row per (hook, digest) makes two identical
-- deliveries at once agree on which came first.
CREATE TABLE durable.hook_deliveries (
    workspace_id uuid NOT NULL REFERENCES durable.workspaces (id),
    hook_id      uuid NOT NULL REFERENCES durable.hooks (id) ON DELETE CASCADE,
    body_digest  bytea NOT NULL,
    delivery_id  text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hook_id, body_digest)
);
CREATE INDEX hook_deliveries_received ON durable.hook_deliveries (hook_id, received_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON durable.hook_deliveries TO durable_tenant;
ALTER TABLE durable.hook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON durable.hook_deliveries TO durable_tenant
    USING (workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid)
    WITH CHECK (workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid);
