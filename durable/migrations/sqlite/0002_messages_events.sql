-- Messages sent to runs (taken by ctx.recv) and events published by runs (ctx.set_event).
-- A run waiting for a message is `sleeping` until its timeout with `waiting_topic` set; a
-- message on that topic makes it due at once.

ALTER TABLE runs ADD COLUMN waiting_topic TEXT;

CREATE TABLE messages (
    workspace_id    TEXT NOT NULL,
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    topic           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT,
    -- the recv step that took it; NULL while it waits to be taken
    consumed_seq    INTEGER,
    created_at      INTEGER NOT NULL,
    UNIQUE (run_id, idempotency_key)
) STRICT;

CREATE INDEX messages_waiting ON messages (run_id, topic, id) WHERE consumed_seq IS NULL;

CREATE TABLE events (
    workspace_id TEXT NOT NULL,
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) STRICT;
