-- Cron schedules. Each tick starts one run with workflow id `schedule:<name>:<tick>`; firing
-- a tick inserts the run and moves next_fire_at on in one transaction, so the unique
-- (workspace_id, workflow_id) of runs keeps a tick from starting twice.

CREATE TABLE schedules (
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    id               TEXT NOT NULL PRIMARY KEY,
    name             TEXT NOT NULL,
    workflow_name    TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    -- claims in a row without progress before a started run is parked
    max_claims       INTEGER NOT NULL,
    input            TEXT NOT NULL,
    cron             TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    catch_up         TEXT NOT NULL CHECK (catch_up IN ('skip', 'one', 'all')),
    paused           INTEGER NOT NULL DEFAULT 0,
    -- the next tick to fire; NULL once the expression has no more ticks
    next_fire_at     INTEGER,
    last_fired_at    INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
) STRICT;

CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = 0;
