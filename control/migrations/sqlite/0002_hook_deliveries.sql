-- Replay protection for webhook schemes whose signature covers the body only (GitHub's);
-- the same tables as on Postgres, which explains them.

ALTER TABLE hooks ADD COLUMN dedupe_window_secs INTEGER
    CHECK (dedupe_window_secs BETWEEN 1 AND 86400);
UPDATE hooks SET dedupe_window_secs = 300 WHERE scheme = 'github';

CREATE TABLE hook_deliveries (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    hook_id      TEXT NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
    body_digest  BLOB NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (hook_id, body_digest)
) STRICT;
CREATE INDEX hook_deliveries_received ON hook_deliveries (hook_id, received_at);
