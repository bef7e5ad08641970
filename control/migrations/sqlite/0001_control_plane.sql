-- The control plane of the integration platform: the same tables as on Postgres. The
-- workspaces themselves are the engine's (`workspaces`); this adds who owns them. SQLite
-- has no row-level security: the rules' own scoping (every statement names the workspace)
-- is the only wall on this store. Times are integer microseconds since the Unix epoch.

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    plan       TEXT NOT NULL DEFAULT 'free',
    created_at INTEGER NOT NULL
) STRICT;

INSERT INTO tenants (id, slug, created_at)
VALUES ('00000000-0000-0000-0000-000000000000', 'default',
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE tenant_workspaces (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    tenant_id    TEXT NOT NULL REFERENCES tenants (id)
) STRICT;
CREATE INDEX tenant_workspaces_tenant ON tenant_workspaces (tenant_id);

-- Every workspace the engine already has belongs to the default tenant.
INSERT INTO tenant_workspaces (workspace_id, tenant_id)
SELECT id, '00000000-0000-0000-0000-000000000000' FROM workspaces;

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
    -- SHA-256 of the whole token; the token itself is shown once and never stored
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

-- A version is a draft until published; a published version never changes.
CREATE TABLE flow_versions (
    workspace_id TEXT NOT NULL,
    flow_id      TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER,
    PRIMARY KEY (flow_id, version)
) STRICT;

-- Webhook endpoints. The id is the unguessable part of the intake URL.
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

-- Stripe-style Idempotency-Key records, kept 24 hours, per API key. A stored response never
-- holds a secret: the server withholds those before it stores one.
CREATE TABLE idempotency_keys (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    api_key_id    TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status_code   INTEGER,
    response_body BLOB,
    permission    TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, api_key_id, key)
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

-- Append-only, as on Postgres (where the tenant role has no UPDATE or DELETE on it).
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
