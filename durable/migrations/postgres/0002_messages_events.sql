-- Messages sent to runs (taken by ctx.recv) and events published by runs (ctx.set_event).
-- A run waiting for a message is `sleeping` until its timeout with `waiting_topic` set; a
-- message on that topic makes it due at once.

ALTER TABLE durable.runs ADD COLUMN waiting_topic text;

CREATE TABLE durable.messages (
    workspace_id    uuid NOT NULL,
    id              bigserial PRIMARY KEY,
    run_id          uuid NOT NULL REFERENCES durable.runs (id) ON DELETE CASCADE,
    topic           text NOT NULL,
    payload         jsonb NOT NULL,
    idempotency_key text,
    -- the recv step that took it; NULL while it waits to be taken
    consumed_seq    integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, idempotency_key)
);

CREATE INDEX messages_waiting ON durable.messages (run_id, topic, id) WHERE consumed_seq IS NULL;

CREATE TABLE durable.events (
    workspace_id uuid NOT NULL,
    run_id       uuid NOT NULL REFERENCES durable.runs (id) ON DELETE CASCADE,
    key          text NOT NULL,
    value        jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, key)
);
