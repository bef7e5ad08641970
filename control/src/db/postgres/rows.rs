//! Rows as the model's types. Column lists are macros, so that `concat!` builds each
//! statement as one `&'static str`.

use durable::tokio_postgres::Row;
use durable::tokio_postgres::types::Json;
use uuid::Uuid;

use crate::db::{ConnectorRow, ConnectorVersionRow, IdempotencyRow};
use crate::error::corrupt;
use crate::model::{
    ApiKey, AuditEntry, ConnectorAction, ConnectorTrigger, ConnectorVersionInfo, Flow, FlowVersion,
    Hook, HookScheme, HookWithSecrets, KeyGrant, Member, Tenant, TriggerKind, Workspace,
};
use crate::{Error, Result};

macro_rules! tenant_cols {
    () => {
        "id, slug, plan, created_at"
    };
}
macro_rules! key_cols {
    () => {
        "id, workspace_id, name, token_prefix, scopes, created_by, created_at, revoked_at"
    };
}
macro_rules! flow_cols {
    () => {
        "id, workspace_id, name, description, created_at, updated_at"
    };
}
macro_rules! version_cols {
    () => {
        "flow_id, version, definition, created_at, published_at"
    };
}
macro_rules! hook_cols {
    () => {
        "id, workspace_id, workflow_name, scheme, secrets, dedupe_window_secs, created_at"
    };
}
macro_rules! connector_cols {
    () => {
        "id, workspace_id, name, display_name, description, created_at"
    };
}
macro_rules! connector_version_cols {
    () => {
        "id, version, manifest, files, digest, created_at"
    };
}
pub(super) use {
    connector_cols, connector_version_cols, flow_cols, hook_cols, key_cols, tenant_cols,
    version_cols,
};

fn get<'a, T: durable::tokio_postgres::types::FromSql<'a>>(row: &'a Row, col: &str) -> Result<T> {
    row.try_get(col)
        .map_err(|e| Error::Database(durable::Error::from(e)))
}

pub(super) fn tenant(row: &Row) -> Result<Tenant> {
    Ok(Tenant {
        id: get(row, "id")?,
        slug: get(row, "slug")?,
        plan: get(row, "plan")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn workspace(row: &Row) -> Result<Workspace> {
    Ok(Workspace {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn grant(row: &Row) -> Result<KeyGrant> {
    Ok(KeyGrant {
        key_id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        tenant_id: get(row, "tenant_id")?,
        scopes: get(row, "scopes")?,
    })
}

pub(super) fn api_key(row: &Row) -> Result<ApiKey> {
    Ok(ApiKey {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        name: get(row, "name")?,
        token_prefix: get(row, "token_prefix")?,
        scopes: get(row, "scopes")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub(super) fn member(row: &Row) -> Result<Member> {
    Ok(Member {
        user_id: get(row, "user_id")?,
        email: get(row, "email")?,
        role: get(row, "role")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn flow(row: &Row) -> Result<Flow> {
    Ok(Flow {
        id: get(row, "id")?,
        workspace_id: get(row, "workspace_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(super) fn version(row: &Row) -> Result<FlowVersion> {
    Ok(FlowVersion {
        flow_id: get(row, "flow_id")?,
        version: get(row, "version")?,
        definition: get(row, "definition")?,
        created_at: get(row, "created_at")?,
        published_at: get(row, "published_at")?,
    })
}

pub(super) fn hook(row: &Row) -> Result<HookWithSecrets> {
    let scheme: String = get(row, "scheme")?;
    let scheme = HookScheme::parse(&scheme)
        .ok_or_else(|| corrupt(format!("hook scheme `{scheme}` is unknown")))?;
    Ok(HookWithSecrets {
        hook: Hook {
            id: get(row, "id")?,
            workspace_id: get(row, "workspace_id")?,
            workflow_name: get(row, "workflow_name")?,
            scheme,
            dedupe_window: window(get(row, "dedupe_window_secs")?)?,
            created_at: get(row, "created_at")?,
        },
        secrets: get(row, "secrets")?,
    })
}

/// A stored dedupe window: `NULL` is off.
fn window(secs: Option<i32>) -> Result<Option<std::time::Duration>> {
    secs.map(|s| {
        u64::try_from(s)
            .map(std::time::Duration::from_secs)
            .map_err(|_| corrupt(format!("dedupe window {s} s is out of range")))
    })
    .transpose()
}

pub(super) fn idempotency(row: &Row) -> Result<IdempotencyRow> {
    let status: Option<i32> = get(row, "status_code")?;
    let status = status
        .map(|s| u16::try_from(s).map_err(|_| corrupt(format!("status code {s} is out of range"))))
        .transpose()?;
    Ok(IdempotencyRow {
        request_hash: get(row, "request_hash")?,
        status,
        body: get(row, "response_body")?,
        permission: get(row, "permission")?,
    })
}

pub(super) fn audit(row: &Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: get(row, "id")?,
        at: get(row, "at")?,
        actor_key_id: get(row, "actor_key_id")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        details: get(row, "details")?,
    })
}

pub(super) fn connector(row: &Row) -> Result<ConnectorRow> {
    Ok(ConnectorRow {
        id: get(row, "id")?,
        workspace: get(row, "workspace_id")?,
        name: get(row, "name")?,
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn connector_version(row: &Row) -> Result<ConnectorVersionRow> {
    let Json(files) = get(row, "files")?;
    Ok(ConnectorVersionRow {
        id: get(row, "id")?,
        version: get(row, "version")?,
        manifest: get(row, "manifest")?,
        files,
        digest: get(row, "digest")?,
        created_at: get(row, "created_at")?,
    })
}

/// A version as listed, with its connector's id.
pub(super) fn connector_version_info(row: &Row) -> Result<(Uuid, ConnectorVersionInfo)> {
    let info = ConnectorVersionInfo {
        version: get(row, "version")?,
        digest: get(row, "digest")?,
        created_at: get(row, "created_at")?,
    };
    Ok((get(row, "connector_id")?, info))
}

pub(super) fn connector_trigger(row: &Row) -> Result<ConnectorTrigger> {
    let kind: String = get(row, "kind")?;
    let kind = TriggerKind::parse(&kind)
        .ok_or_else(|| corrupt(format!("trigger kind `{kind}` is unknown")))?;
    Ok(ConnectorTrigger {
        key: get(row, "key")?,
        kind,
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        payload_schema: get(row, "payload_schema")?,
    })
}

pub(super) fn connector_action(row: &Row) -> Result<ConnectorAction> {
    Ok(ConnectorAction {
        key: get(row, "key")?,
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        input_schema: get(row, "input_schema")?,
        output_schema: get(row, "output_schema")?,
    })
}
