-- Cron schedules. Each tick starts one run with workflow id `schedule:<name>:<tick>`; firing
-- a tick inserts the run and moves next_fire_at on in one transaction, so the unique
-- (workspace_id, workflow_id) of runs keeps a tick from starting twice.

CREATE TABLE durable.schedules (
    workspace_id     uuid NOT NULL REFERENCES durable.workspaces (id),
    id               uuid NOT NULL,
    name             text NOT NULL,
    workflow_name    text NOT NULL,
    workflow_version integer NOT NULL,
    -- claims in a row without progress before a started run is parked
    max_claims       integer NOT NULL,
    input            jsonb NOT NULL,
    cron             text NOT NULL,
    timezone         text NOT NULL,
    catch_up         text NOT NULL CHECK (catch_up IN ('skip', 'one', 'all')),
    paused           boolean NOT NULL DEFAULT false,
    -- the next tick to fire; NULL once the expression has no more ticks
    next_fire_at     timestamptz,
    last_fired_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id),
    UNIQUE (workspace_id, name)
);

CREATE INDEX schedules_due ON durable.schedules (next_fire_at) WHERE NOT paused;
