-- Runs and their recorded steps. Every table that holds tenant data carries workspace_id,
-- the future distribution column when the store is partitioned by workspace.

CREATE TABLE durable.workspaces (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO durable.workspaces (id, name)
VALUES ('00000000-0000-0000-0000-000000000000', 'default');

CREATE TABLE durable.runs (
    workspace_id     uuid NOT NULL REFERENCES durable.workspaces (id),
    id               uuid NOT NULL,
    workflow_id      text NOT NULL,
    workflow_name    text NOT NULL,
    workflow_version integer NOT NULL,
    input            jsonb NOT NULL,
    status           text NOT NULL CHECK (status IN
                       ('pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled', 'parked')),
    output           jsonb,
    error            text,
    -- claims in a row without progress; a claim counts as an attempt
    claims           integer NOT NULL DEFAULT 0,
    max_claims       integer NOT NULL,
    -- fencing epoch: raised by every claim, checked by every write
    epoch            bigint NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    wake_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    PRIMARY KEY (id),
    UNIQUE (workspace_id, workflow_id)
);

-- One partial index per way a run becomes claimable.
CREATE INDEX runs_pending ON durable.runs (created_at) WHERE status = 'pending';
CREATE INDEX runs_due ON durable.runs (wake_at) WHERE status = 'sleeping';
CREATE INDEX runs_leased ON durable.runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_listing ON durable.runs (workspace_id, created_at DESC);

CREATE TABLE durable.steps (
    workspace_id     uuid NOT NULL,
    run_id           uuid NOT NULL REFERENCES durable.runs (id) ON DELETE CASCADE,
    seq              integer NOT NULL,
    name             text NOT NULL,
    kind             text NOT NULL,
    status           text NOT NULL,
    output           jsonb,
    error            jsonb,
    attempts         integer NOT NULL DEFAULT 0,
    wake_at          timestamptz,
    first_attempt_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
