//! Rows as the model's types, and values as this store keeps them: ids are lowercase
//! hyphenated UUID text, JSON (and the arrays of scopes and secrets) is text, and times are
//! integer microseconds since the Unix epoch, from the machine's clock, as the engine's
//! store stamps runs.

use chrono::{DateTime, Utc};
use durable::rusqlite::{self, Row};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::db::{ConnectorRow, ConnectorVersionRow, IdempotencyRow};
use crate::error::corrupt;
use crate::model::{
    ApiKey, AuditEntry, ConnectorAction, ConnectorTrigger, ConnectorVersionInfo, Flow, FlowVersion,
    Hook, HookScheme, HookWithSecrets, KeyGrant, Member, Tenant, TriggerKind, Workspace,
};
use crate::{Error, Result};

pub(super) const TENANT_COLS: &str = "id, slug, plan, created_at";
pub(super) const KEY_COLS: &str =
    "id, workspace_id, name, token_prefix, scopes, created_by, created_at, revoked_at";
pub(super) const FLOW_COLS: &str = "id, workspace_id, name, description, created_at, updated_at";
pub(super) const VERSION_COLS: &str = "flow_id, version, definition, created_at, published_at";
pub(super) const HOOK_COLS: &str =
    "id, workspace_id, workflow_name, scheme, secrets, dedupe_window_secs, created_at";
pub(super) const CONNECTOR_COLS: &str =
    "id, workspace_id, name, display_name, description, created_at";
pub(super) const CONNECTOR_VERSION_COLS: &str = "id, version, manifest, files, digest, created_at";

/// The clock of every timestamp written here.
pub(super) fn now() -> i64 {
    Utc::now().timestamp_micros()
}

/// A UUID as stored.
pub(super) fn id(id: Uuid) -> String {
    id.hyphenated().to_string()
}

pub(super) fn db(err: rusqlite::Error) -> Error {
    Error::Database(durable::Error::from(err))
}

pub(super) fn json_text(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Database(e.into()))
}

fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, col: &str) -> Result<T> {
    row.get(col).map_err(db)
}

fn uuid(row: &Row<'_>, col: &str) -> Result<Uuid> {
    let text: String = get(row, col)?;
    Uuid::parse_str(&text)
        .map_err(|e| corrupt(format!("column {col} holds `{text}`, not a UUID: {e}")))
}

fn opt_uuid(row: &Row<'_>, col: &str) -> Result<Option<Uuid>> {
    let text: Option<String> = get(row, col)?;
    text.map(|text| {
        Uuid::parse_str(&text)
            .map_err(|e| corrupt(format!("column {col} holds `{text}`, not a UUID: {e}")))
    })
    .transpose()
}

fn timestamp(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| corrupt(format!("timestamp {us} µs is out of range")))
}

fn time(row: &Row<'_>, col: &str) -> Result<DateTime<Utc>> {
    timestamp(get(row, col)?)
}

fn opt_time(row: &Row<'_>, col: &str) -> Result<Option<DateTime<Utc>>> {
    get::<Option<i64>>(row, col)?.map(timestamp).transpose()
}

fn json<T: DeserializeOwned>(row: &Row<'_>, col: &str) -> Result<T> {
    let text: String = get(row, col)?;
    serde_json::from_str(&text).map_err(|e| Error::Database(e.into()))
}

fn opt_json<T: DeserializeOwned>(row: &Row<'_>, col: &str) -> Result<Option<T>> {
    let text: Option<String> = get(row, col)?;
    text.map(|text| serde_json::from_str(&text).map_err(|e| Error::Database(e.into())))
        .transpose()
}

pub(super) fn tenant(row: &Row<'_>) -> Result<Tenant> {
    Ok(Tenant {
        id: uuid(row, "id")?,
        slug: get(row, "slug")?,
        plan: get(row, "plan")?,
        created_at: time(row, "created_at")?,
    })
}

pub(super) fn workspace(row: &Row<'_>) -> Result<Workspace> {
    Ok(Workspace {
        id: uuid(row, "id")?,
        tenant_id: uuid(row, "tenant_id")?,
        name: get(row, "name")?,
        created_at: time(row, "created_at")?,
    })
}

pub(super) fn grant(row: &Row<'_>) -> Result<KeyGrant> {
    Ok(KeyGrant {
        key_id: uuid(row, "id")?,
        workspace_id: uuid(row, "workspace_id")?,
        tenant_id: uuid(row, "tenant_id")?,
        scopes: json(row, "scopes")?,
    })
}

pub(super) fn api_key(row: &Row<'_>) -> Result<ApiKey> {
    Ok(ApiKey {
        id: uuid(row, "id")?,
        workspace_id: uuid(row, "workspace_id")?,
        name: get(row, "name")?,
        token_prefix: get(row, "token_prefix")?,
        scopes: json(row, "scopes")?,
        created_by: opt_uuid(row, "created_by")?,
        created_at: time(row, "created_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

pub(super) fn member(row: &Row<'_>) -> Result<Member> {
    Ok(Member {
        user_id: uuid(row, "user_id")?,
        email: get(row, "email")?,
        role: get(row, "role")?,
        created_at: time(row, "created_at")?,
    })
}

pub(super) fn flow(row: &Row<'_>) -> Result<Flow> {
    Ok(Flow {
        id: uuid(row, "id")?,
        workspace_id: uuid(row, "workspace_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(super) fn version(row: &Row<'_>) -> Result<FlowVersion> {
    Ok(FlowVersion {
        flow_id: uuid(row, "flow_id")?,
        version: get(row, "version")?,
        definition: json(row, "definition")?,
        created_at: time(row, "created_at")?,
        published_at: opt_time(row, "published_at")?,
    })
}

pub(super) fn hook(row: &Row<'_>) -> Result<HookWithSecrets> {
    let scheme: String = get(row, "scheme")?;
    let scheme = HookScheme::parse(&scheme)
        .ok_or_else(|| corrupt(format!("hook scheme `{scheme}` is unknown")))?;
    Ok(HookWithSecrets {
        hook: Hook {
            id: uuid(row, "id")?,
            workspace_id: uuid(row, "workspace_id")?,
            workflow_name: get(row, "workflow_name")?,
            scheme,
            dedupe_window: window(get(row, "dedupe_window_secs")?)?,
            created_at: time(row, "created_at")?,
        },
        secrets: json(row, "secrets")?,
    })
}

/// A stored dedupe window: `NULL` is off.
fn window(secs: Option<i64>) -> Result<Option<std::time::Duration>> {
    secs.map(|s| {
        u64::try_from(s)
            .map(std::time::Duration::from_secs)
            .map_err(|_| corrupt(format!("dedupe window {s} s is out of range")))
    })
    .transpose()
}

pub(super) fn idempotency(row: &Row<'_>) -> Result<IdempotencyRow> {
    let status: Option<i64> = get(row, "status_code")?;
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

pub(super) fn audit(row: &Row<'_>) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: uuid(row, "id")?,
        at: time(row, "at")?,
        actor_key_id: opt_uuid(row, "actor_key_id")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        details: json(row, "details")?,
    })
}

pub(super) fn connector(row: &Row<'_>) -> Result<ConnectorRow> {
    Ok(ConnectorRow {
        id: uuid(row, "id")?,
        workspace: opt_uuid(row, "workspace_id")?,
        name: get(row, "name")?,
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        created_at: time(row, "created_at")?,
    })
}

pub(super) fn connector_version(row: &Row<'_>) -> Result<ConnectorVersionRow> {
    Ok(ConnectorVersionRow {
        id: uuid(row, "id")?,
        version: get(row, "version")?,
        manifest: json(row, "manifest")?,
        files: json(row, "files")?,
        digest: get(row, "digest")?,
        created_at: time(row, "created_at")?,
    })
}

/// A version as listed, with its connector's id.
pub(super) fn connector_version_info(row: &Row<'_>) -> Result<(Uuid, ConnectorVersionInfo)> {
    let info = ConnectorVersionInfo {
        version: get(row, "version")?,
        digest: get(row, "digest")?,
        created_at: time(row, "created_at")?,
    };
    Ok((uuid(row, "connector_id")?, info))
}

pub(super) fn connector_trigger(row: &Row<'_>) -> Result<ConnectorTrigger> {
    let kind: String = get(row, "kind")?;
    let kind = TriggerKind::parse(&kind)
        .ok_or_else(|| corrupt(format!("trigger kind `{kind}` is unknown")))?;
    Ok(ConnectorTrigger {
        key: get(row, "key")?,
        kind,
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        payload_schema: opt_json(row, "payload_schema")?,
    })
}

pub(super) fn connector_action(row: &Row<'_>) -> Result<ConnectorAction> {
    Ok(ConnectorAction {
        key: get(row, "key")?,
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        input_schema: json(row, "input_schema")?,
        output_schema: opt_json(row, "output_schema")?,
    })
}
