-- The registry of connector packages: the same tables as on Postgres, which explains them.
-- No row-level security here: the rules' own scoping is the only wall between workspaces.

CREATE TABLE connectors (
    id           TEXT PRIMARY KEY,
    -- NULL: a global connector
    workspace_id TEXT REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
) STRICT;
CREATE UNIQUE INDEX connectors_global_name ON connectors (name) WHERE workspace_id IS NULL;

CREATE TABLE connector_versions (
    id           TEXT PRIMARY KEY,
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    workspace_id TEXT REFERENCES workspaces (id),
    version      TEXT NOT NULL,
    -- JSON text
    manifest     TEXT NOT NULL,
    -- JSON object text: path -> file text
    files        TEXT NOT NULL DEFAULT '{}',
    digest       TEXT NOT NULL
        CHECK (length(digest) = 64 AND digest NOT GLOB '*[^0-9a-f]*'),
    created_at   INTEGER NOT NULL,
    UNIQUE (connector_id, version)
) STRICT;
CREATE INDEX connector_versions_workspace ON connector_versions (workspace_id);

CREATE TABLE connector_triggers (
    workspace_id   TEXT REFERENCES workspaces (id),
    version_id     TEXT NOT NULL REFERENCES connector_versions (id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('webhook', 'polling')),
    display_name   TEXT NOT NULL DEFAULT '',
    description    TEXT NOT NULL DEFAULT '',
    payload_schema TEXT,
    PRIMARY KEY (version_id, key)
) STRICT;

CREATE TABLE connector_actions (
    workspace_id  TEXT REFERENCES workspaces (id),
    version_id    TEXT NOT NULL REFERENCES connector_versions (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    description   TEXT NOT NULL DEFAULT '',
    input_schema  TEXT NOT NULL,
    output_schema TEXT,
    PRIMARY KEY (version_id, key)
) STRICT;

-- An installed version never changes, as on Postgres (where the tenant role may not update
-- one): no store-level statement may rewrite it either.
CREATE TRIGGER connector_versions_immutable BEFORE UPDATE ON connector_versions
BEGIN SELECT RAISE(ABORT, 'an installed connector version never changes'); END;
CREATE TRIGGER connector_triggers_immutable BEFORE UPDATE ON connector_triggers
BEGIN SELECT RAISE(ABORT, 'an installed connector version never changes'); END;
CREATE TRIGGER connector_actions_immutable BEFORE UPDATE ON connector_actions
BEGIN SELECT RAISE(ABORT, 'an installed connector version never changes'); END;
