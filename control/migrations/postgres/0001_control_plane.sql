-- The control plane of the integration platform: tenants own workspaces; members, API keys,
-- flows, webhooks, idempotency records and the audit log belong to one workspace each. The
-- workspaces themselves are the engine's (`durable.workspaces`); this adds who owns them.
--
-- Row-level security is a second wall behind the rules' own scoping: every tenant request
-- runs as role durable_tenant with `durable.workspace_id` set for its transaction only, and
-- the policies below show that role the rows of that workspace and nothing else (no
-- setting, or an empty one, means no rows). The tables' owner is not subject to them.
-- The role itself is created (or its absence reported) before this runs.

CREATE TABLE durable.tenants (
    id         uuid PRIMARY KEY,
    slug       text NOT NULL UNIQUE,
    plan       text NOT NULL DEFAULT 'free',
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO durable.tenants (id, slug)
VALUES ('00000000-0000-0000-0000-000000000000', 'default');

CREATE TABLE durable.tenant_workspaces (
    workspace_id uuid PRIMARY KEY REFERENCES durable.workspaces (id),
    tenant_id    uuid NOT NULL REFERENCES durable.tenants (id)
);
CREATE INDEX tenant_workspaces_tenant ON durable.tenant_workspaces (tenant_id);

-- Every workspace the engine already has belongs to the default tenant.
INSERT INTO durable.tenant_workspaces (workspace_id, tenant_id)
SELECT id, '00000000-0000-0000-0000-000000000000' FROM durable.workspaces;

CREATE TABLE durable.users (
    id         uuid PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE durable.workspace_members (
    workspace_id uuid NOT NULL REFERENCES durable.workspaces (id),
    user_id      uuid NOT NULL REFERENCES durable.users (id),
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE durable.api_keys (
    workspace_id uuid NOT NULL REFERENCES durable.workspaces (id),
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    -- SHA-256 of the whole token; the token itself is shown once and never stored
    token_hash   bytea NOT NULL UNIQUE,
    -- the token's first characters, to tell keys apart in listings
    token_prefix text NOT NULL,
    scopes       text[] NOT NULL,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_workspace ON durable.api_keys (workspace_id, created_at);

CREATE TABLE durable.flows (
    workspace_id uuid NOT NULL REFERENCES durable.workspaces (id),
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);

-- A version is a draft until published; a published version never changes.
CREATE TABLE durable.flow_versions (
    workspace_id uuid NOT NULL,
    flow_id      uuid NOT NULL REFERENCES durable.flows (id) ON DELETE CASCADE,
    version      integer NOT NULL,
    definition   jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    PRIMARY KEY (flow_id, version)
);

-- Webhook endpoints. The id is the unguessable part of the intake URL.
CREATE TABLE durable.hooks (
    workspace_id  uuid NOT NULL REFERENCES durable.workspaces (id),
    id            uuid PRIMARY KEY,
    workflow_name text NOT NULL,
    scheme        text NOT NULL CHECK (scheme IN ('standard_webhooks', 'github', 'none')),
    -- verification secrets, newest first (several during a rotation); never returned
    secrets       text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hooks_workspace ON durable.hooks (workspace_id, created_at);

-- Stripe-style Idempotency-Key records, kept 24 hours, per API key. A stored response never
-- holds a secret: the server withholds those before it stores one.
CREATE TABLE durable.idempotency_keys (
    workspace_id  uuid NOT NULL REFERENCES durable.workspaces (id),
    api_key_id    uuid NOT NULL,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    -- NULL while the first request is still being handled
    status_code   integer,
    response_body bytea,
    -- the permission the handler checked, checked again before a replay
    permission    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, api_key_id, key)
);

CREATE TABLE durable.audit_log (
    workspace_id uuid NOT NULL REFERENCES durable.workspaces (id),
    id           uuid PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    -- the API key that made the change; NULL for the system (bootstrap, dev set-up)
    actor_key_id uuid,
    action       text NOT NULL,
    target       text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_workspace ON durable.audit_log (workspace_id, at DESC);

GRANT USAGE ON SCHEMA durable TO durable_tenant;
GRANT SELECT ON durable.workspaces, durable.tenant_workspaces, durable.users TO durable_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    durable.workspace_members, durable.api_keys, durable.flows, durable.flow_versions,
    durable.hooks, durable.idempotency_keys
    TO durable_tenant;
-- The audit log is append-only for tenants: no UPDATE, no DELETE.
GRANT SELECT, INSERT ON durable.audit_log TO durable_tenant;
-- The engine's run tables: a tenant reads its own runs and their history, and the client
-- calls the API makes for it (start, cancel, pause, resume, fork) write what they need; the
-- policies below keep every row it touches in its own workspace. Deleting is the owner's.
GRANT SELECT ON durable.runs, durable.steps, durable.messages, durable.events,
    durable.schedules TO durable_tenant;
GRANT INSERT, UPDATE ON durable.runs TO durable_tenant;
GRANT INSERT ON durable.steps, durable.messages TO durable_tenant;
GRANT USAGE ON SEQUENCE durable.messages_id_seq TO durable_tenant;

ALTER TABLE durable.workspaces ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON durable.workspaces TO durable_tenant
    USING (id = nullif(current_setting('durable.workspace_id', true), '')::uuid);

-- users hold no workspace id: a user is visible to the workspaces it is a member of.
ALTER TABLE durable.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON durable.users TO durable_tenant
    USING (EXISTS (
        SELECT FROM durable.workspace_members m
        WHERE m.user_id = users.id
          AND m.workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid));

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_workspaces', 'workspace_members', 'api_keys', 'flows',
                             'flow_versions', 'hooks', 'idempotency_keys', 'audit_log',
                             'runs', 'steps', 'messages', 'events', 'schedules']
    LOOP
        EXECUTE format('ALTER TABLE durable.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_scope ON durable.%I TO durable_tenant '
            'USING (workspace_id = nullif(current_setting(''durable.workspace_id'', true), '''')::uuid) '
            'WITH CHECK (workspace_id = nullif(current_setting(''durable.workspace_id'', true), '''')::uuid)',
            t);
    END LOOP;
END $$;
