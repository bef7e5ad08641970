-- The control plane of the integration platform: the same tables as the Postgres schema.
-- SQLite has no row-level security: the server's own scoping (every query names the
-- workspace) is the only wall on this store.

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    plan       TEXT NOT NULL DEFAULT 'free',
    created_at INTEGER NOT NULL
) STRICT;

INSERT INTO tenants (id, slug, created_at)
VALUES ('00000000-0000-0000-0000-000000000000', 'default',
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));

-- (SQLite cannot add a column with both a REFERENCES clause and a non-NULL default.)
ALTER TABLE workspaces
    ADD COLUMN tenant_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
CREATE INDEX workspaces_tenant ON workspaces (tenant_id);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE workspace_members (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) STRICT;

CREATE TABLE api_keys (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    -- JSON array of scope names
    scopes       TEXT NOT NULL,
    created_by   TEXT,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, created_at);

CREATE TABLE flows (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
) STRICT;

CREATE TABLE flow_versions (
    workspace_id TEXT NOT NULL,
    flow_id      TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER,
    PRIMARY KEY (flow_id, version)
) STRICT;

CREATE TABLE hooks (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    id            TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    scheme        TEXT NOT NULL CHECK (scheme IN ('standard_webhooks', 'github', 'none')),
    -- JSON array of secrets, newest first; never returned
    secrets       TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX hooks_workspace ON hooks (workspace_id, created_at);

CREATE TABLE idempotency_keys (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    key           TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status_code   INTEGER,
    response_body BLOB,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, key)
) STRICT;

CREATE TABLE audit_log (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    id           TEXT PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor_key_id TEXT,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    details      TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, at DESC);
