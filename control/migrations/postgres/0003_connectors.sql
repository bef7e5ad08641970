-- The registry of connector packages. A connector without a workspace is global: shipped
-- with the platform or installed by the operator, seen by every workspace, written by the
-- system only. Otherwise it is one workspace's private connector, seen by that workspace
-- alone. An installed version never changes: the same name and version always mean the same
-- package (its digest), so a run that recorded a version replays against the same code.
-- Packages arrive validated: these tables store them, they do not judge them.

CREATE TABLE durable.connectors (
    id           uuid PRIMARY KEY,
    -- NULL: a global connector
    workspace_id uuid REFERENCES durable.workspaces (id),
    name         text NOT NULL,
    -- the labels of its most recently installed version
    display_name text NOT NULL,
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);
-- UNIQUE holds NULLs distinct: this makes the names of the global connectors unique too.
CREATE UNIQUE INDEX connectors_global_name ON durable.connectors (name)
    WHERE workspace_id IS NULL;

CREATE TABLE durable.connector_versions (
    id           uuid PRIMARY KEY,
    connector_id uuid NOT NULL REFERENCES durable.connectors (id) ON DELETE CASCADE,
    -- the connector's own (NULL for a global one)
    workspace_id uuid REFERENCES durable.workspaces (id),
    -- a semantic version, checked by the caller
    version      text NOT NULL,
    -- the whole manifest.json
    manifest     jsonb NOT NULL,
    -- the package's other files: path -> text
    files        jsonb NOT NULL DEFAULT '{}',
    -- hex SHA-256 of the package, computed by the caller: equal digests, equal packages
    digest       text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connector_id, version)
);
CREATE INDEX connector_versions_workspace ON durable.connector_versions (workspace_id);

-- A version's triggers and actions, for the catalog and for flow validation without
-- reading the manifest; part of the version, so as immutable as it.
CREATE TABLE durable.connector_triggers (
    workspace_id   uuid REFERENCES durable.workspaces (id),
    version_id     uuid NOT NULL REFERENCES durable.connector_versions (id) ON DELETE CASCADE,
    key            text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('webhook', 'polling')),
    display_name   text NOT NULL DEFAULT '',
    description    text NOT NULL DEFAULT '',
    payload_schema jsonb,
    PRIMARY KEY (version_id, key)
);

CREATE TABLE durable.connector_actions (
    workspace_id  uuid REFERENCES durable.workspaces (id),
    version_id    uuid NOT NULL REFERENCES durable.connector_versions (id) ON DELETE CASCADE,
    key           text NOT NULL,
    display_name  text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    input_schema  jsonb NOT NULL,
    output_schema jsonb,
    PRIMARY KEY (version_id, key)
);

-- A tenant reads its own connectors and the global ones, and installs its own. It never
-- writes a global row, nor attaches a version to a connector it does not own, and it
-- changes no version once installed (no UPDATE, no DELETE). A new version relabels its
-- connector: the labels only, of the tenant's own connectors only.
GRANT SELECT, INSERT ON durable.connectors, durable.connector_versions,
    durable.connector_triggers, durable.connector_actions TO durable_tenant;
GRANT UPDATE (display_name, description) ON durable.connectors TO durable_tenant;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['connectors', 'connector_versions', 'connector_triggers',
                             'connector_actions']
    LOOP
        EXECUTE format('ALTER TABLE durable.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_read ON durable.%I FOR SELECT TO durable_tenant '
            'USING (workspace_id IS NULL OR workspace_id = '
            'nullif(current_setting(''durable.workspace_id'', true), '''')::uuid)',
            t);
    END LOOP;
END $$;

CREATE POLICY tenant_install ON durable.connectors FOR INSERT TO durable_tenant
    WITH CHECK (workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid);
CREATE POLICY tenant_relabel ON durable.connectors FOR UPDATE TO durable_tenant
    USING (workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid)
    WITH CHECK (workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid);

-- Each child row must belong to a parent of the same workspace: a tenant cannot hang a
-- version of its own under a global connector, which every workspace would then resolve.
CREATE POLICY tenant_install ON durable.connector_versions FOR INSERT TO durable_tenant
    WITH CHECK (
        workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid
        AND EXISTS (
            SELECT FROM durable.connectors c
            WHERE c.id = connector_versions.connector_id
              AND c.workspace_id = connector_versions.workspace_id));
CREATE POLICY tenant_install ON durable.connector_triggers FOR INSERT TO durable_tenant
    WITH CHECK (
        workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid
        AND EXISTS (
            SELECT FROM durable.connector_versions v
            WHERE v.id = connector_triggers.version_id
              AND v.workspace_id = connector_triggers.workspace_id));
CREATE POLICY tenant_install ON durable.connector_actions FOR INSERT TO durable_tenant
    WITH CHECK (
        workspace_id = nullif(current_setting('durable.workspace_id', true), '')::uuid
        AND EXISTS (
            SELECT FROM durable.connector_versions v
            WHERE v.id = connector_actions.version_id
              AND v.workspace_id = connector_actions.workspace_id));
