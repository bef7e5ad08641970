-- Runs and their recorded steps: the same tables and columns as the Postgres schema, so both
-- stores keep one set of semantics. Every table that holds tenant data carries workspace_id.
--
-- Types: ids are hyphenated lowercase UUID text (so text order is UUID byte order), JSON is
-- text, and every *_at column is integer microseconds since the Unix epoch (UTC), read from
-- the system clock of the machine that holds the file.

-- Marks the file as Durable's, so another application's SQLite file is refused, not altered.
PRAGMA application_id = 1148547682; -- "Durb"

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

INSERT INTO workspaces (id, name, created_at)
VALUES ('00000000-0000-0000-0000-000000000000', 'default',
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE runs (
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    id               TEXT NOT NULL PRIMARY KEY,
    workflow_id      TEXT NOT NULL,
    workflow_name    TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    input            TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
                       ('pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled', 'parked')),
    output           TEXT,
    error            TEXT,
    -- claims in a row without progress; a claim counts as an attempt
    claims           INTEGER NOT NULL DEFAULT 0,
    max_claims       INTEGER NOT NULL,
    -- fencing epoch: raised by every claim, checked by every write
    epoch            INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    wake_at          INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    UNIQUE (workspace_id, workflow_id)
) STRICT;

-- One partial index per way a run becomes claimable.
CREATE INDEX runs_pending ON runs (created_at) WHERE status = 'pending';
CREATE INDEX runs_due ON runs (wake_at) WHERE status = 'sleeping';
CREATE INDEX runs_leased ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_listing ON runs (workspace_id, created_at DESC);

CREATE TABLE steps (
    workspace_id     TEXT NOT NULL,
    run_id           TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    wake_at          INTEGER,
    first_attempt_at INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
