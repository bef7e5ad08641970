//! The control plane's records, as the rules hand them out. Secrets never appear in a type
//! that derives `Serialize`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// Who acts, and in which workspace: every scoped call needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// The workspace whose rows the call may touch.
    pub workspace: Uuid,
    /// The API key that acts; `None` for the system (bootstrap, `dev` set-up).
    pub actor: Option<Uuid>,
}

impl Scope {
    /// The system acting in `workspace`.
    pub fn system(workspace: Uuid) -> Self {
        Self {
            workspace,
            actor: None,
        }
    }
}

/// A tenant: the customer that owns workspaces.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    /// Its id.
    pub id: Uuid,
    /// Its unique, URL-friendly name.
    pub slug: String,
    /// Its plan (`free`, …).
    pub plan: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A workspace of a tenant.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Workspace {
    /// Its id: the `workspace_id` of every row it owns.
    pub id: Uuid,
    /// The tenant that owns it.
    pub tenant_id: Uuid,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// What a valid, unrevoked API key grants.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    /// The key.
    pub key_id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// The workspace's tenant.
    pub tenant_id: Uuid,
    /// What it may do.
    pub scopes: Vec<String>,
}

/// A new API key's stored parts (the token itself is never stored).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// A name to tell it apart.
    pub name: String,
    /// SHA-256 of the whole token.
    pub token_hash: [u8; 32],
    /// The token's first characters, shown in listings.
    pub token_prefix: String,
    /// What it may do.
    pub scopes: Vec<String>,
}

/// An API key as listed (no hash, no token).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// Its id.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its name.
    pub name: String,
    /// The token's first characters.
    pub token_prefix: String,
    /// What it may do.
    pub scopes: Vec<String>,
    /// The key that created this one; `None` if the system did.
    pub created_by: Option<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key holds `scope`.
    pub fn holds(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The roles of a member, most powerful first.
pub const ROLES: &[&str] = &["owner", "admin", "member", "viewer"];

/// A member of a workspace.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The user.
    pub user_id: Uuid,
    /// The user's email.
    pub email: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
    /// When the user joined.
    pub created_at: DateTime<Utc>,
}

/// A flow: a named graph whose definitions are its versions.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Flow {
    /// Its id.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its name, unique in the workspace.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its name or description last changed.
    pub updated_at: DateTime<Utc>,
}

/// Fields of a flow that an update may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct FlowPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
}

/// A version of a flow's definition: a draft until published, immutable after.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowVersion {
    /// Its flow.
    pub flow_id: Uuid,
    /// 1, 2, 3… per flow.
    pub version: i32,
    /// The graph.
    pub definition: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was published; `None` for a draft.
    pub published_at: Option<DateTime<Utc>>,
}

/// How a webhook proves where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HookScheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256`, delivery id in `X-GitHub-Delivery`.
    Github,
    /// No verification (the unguessable URL is the only secret).
    None,
}

impl HookScheme {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            HookScheme::StandardWebhooks => "standard_webhooks",
            HookScheme::Github => "github",
            HookScheme::None => "none",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "standard_webhooks" => Some(HookScheme::StandardWebhooks),
            "github" => Some(HookScheme::Github),
            "none" => Some(HookScheme::None),
            _ => None,
        }
    }
}

/// A webhook endpoint, without its secrets.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hook {
    /// Its id: the unguessable part of its intake URL.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// The registered workflow each delivery starts.
    pub workflow_name: String,
    /// How deliveries are verified.
    pub scheme: HookScheme,
    /// Within this long, a delivery whose body equals an earlier one's is answered as that
    /// delivery's duplicate (e.g. `"5m"`); `null` when off.
    #[serde(serialize_with = "humantime_or_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub dedupe_window: Option<Duration>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A duration as humantime text (`"5m"`), as the API takes it.
fn humantime_or_null<S: serde::Serializer>(
    window: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match window {
        Some(window) => serializer.collect_str(&humantime::format_duration(*window)),
        None => serializer.serialize_none(),
    }
}

/// A webhook endpoint with its secrets, newest first: for verifying deliveries only.
#[derive(Clone)]
pub struct HookWithSecrets {
    /// The endpoint.
    pub hook: Hook,
    /// Its verification secrets, newest first.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for HookWithSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookWithSecrets")
            .field("hook", &self.hook)
            .field("secrets", &"[REDACTED]")
            .finish()
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Its id.
    pub id: Uuid,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// The API key that made it; `None` for the system.
    pub actor_key_id: Option<Uuid>,
    /// e.g. `flow.create`, `api_key.revoke`.
    pub action: String,
    /// e.g. `flow:<id>`.
    pub target: String,
    /// The changed fields, never a secret.
    pub details: Value,
}

/// Who owns a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectorOwner {
    /// Shipped with the platform or installed by its operator: seen by every workspace.
    Global,
    /// A workspace's private connector: seen by that workspace only.
    Workspace,
}

impl ConnectorOwner {
    /// The owner of a row whose `workspace_id` is `workspace`.
    pub(crate) fn of(workspace: Option<Uuid>) -> Self {
        match workspace {
            Some(_) => ConnectorOwner::Workspace,
            None => ConnectorOwner::Global,
        }
    }
}

/// How a trigger learns of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// The provider pushes events to a webhook URL.
    Webhook,
    /// Events are found by polling the provider.
    Polling,
}

impl TriggerKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Webhook => "webhook",
            TriggerKind::Polling => "polling",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "webhook" => Some(TriggerKind::Webhook),
            "polling" => Some(TriggerKind::Polling),
            _ => None,
        }
    }
}

/// A trigger of a connector version, as its manifest declares it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorTrigger {
    /// Unique among the version's triggers.
    pub key: String,
    /// Webhook or polling.
    pub kind: TriggerKind,
    /// The name shown in the catalog; may be empty.
    pub display_name: String,
    /// What it reports; may be empty.
    pub description: String,
    /// The JSON Schema of the events it emits, resolved, if the manifest gives one.
    pub payload_schema: Option<Value>,
}

/// An action of a connector version, as its manifest declares it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorAction {
    /// Unique among the version's actions.
    pub key: String,
    /// The name shown in the catalog; may be empty.
    pub display_name: String,
    /// What it does; may be empty.
    pub description: String,
    /// The JSON Schema of its input, resolved.
    pub input_schema: Value,
    /// The JSON Schema of its output, resolved, if the manifest gives one.
    pub output_schema: Option<Value>,
}

/// A connector package to install, already validated by its caller (the `durable-connectors`
/// crate checks manifests and computes digests; this crate stores what it is given).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewConnectorVersion {
    /// The connector's name, as in the manifest.
    pub name: String,
    /// Its semantic version, as in the manifest.
    pub version: String,
    /// The name shown in the catalog (the caller's default when the manifest has none).
    pub display_name: String,
    /// What the connector does; may be empty.
    pub description: String,
    /// The whole `manifest.json`.
    pub manifest: Value,
    /// The package's other files: path to text.
    pub files: BTreeMap<String, String>,
    /// Hex SHA-256 of the package: two packages with the same digest are the same.
    pub digest: String,
    /// Its triggers.
    pub triggers: Vec<ConnectorTrigger>,
    /// Its actions.
    pub actions: Vec<ConnectorAction>,
}

/// What an install did: stored a new version, or found the same package already there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstalledConnector {
    /// The connector.
    pub connector_id: Uuid,
    /// Its name.
    pub name: String,
    /// The version installed.
    pub version: String,
    /// Global or the workspace's own.
    pub owner: ConnectorOwner,
    /// The owning workspace; `null` for a global connector.
    pub workspace_id: Option<Uuid>,
    /// The package's digest.
    pub digest: String,
    /// When the version was first installed.
    pub created_at: DateTime<Utc>,
    /// `true` if this call stored it; `false` if the same package was already installed.
    pub created: bool,
}

/// A version of a connector, as listed in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorVersionInfo {
    /// Its semantic version.
    pub version: String,
    /// The package's digest.
    pub digest: String,
    /// When it was installed.
    pub created_at: DateTime<Utc>,
}

/// A connector in a workspace's catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorSummary {
    /// Its id.
    pub id: Uuid,
    /// Its name: unique among the global connectors, and within a workspace.
    pub name: String,
    /// The name shown in the catalog, from its most recently installed version.
    pub display_name: String,
    /// What it does, from its most recently installed version.
    pub description: String,
    /// Global or the workspace's own.
    pub owner: ConnectorOwner,
    /// The owning workspace; `null` for a global connector.
    pub workspace_id: Option<Uuid>,
    /// When its first version was installed.
    pub created_at: DateTime<Utc>,
    /// Its versions, most recently installed first.
    pub versions: Vec<ConnectorVersionInfo>,
}

/// One installed version of a connector, whole: what a worker needs to run it.
///
/// Named `ConnectorPackage` in the OpenAPI document, where a `…Version` schema would read as a
/// producer of the flows' integer `{version}` path parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ConnectorPackage))]
pub struct ConnectorVersion {
    /// The connector.
    pub connector_id: Uuid,
    /// Its name.
    pub name: String,
    /// This version.
    pub version: String,
    /// The connector's catalog name, from its most recently installed version.
    pub display_name: String,
    /// What the connector does, from its most recently installed version.
    pub description: String,
    /// Global or the workspace's own.
    pub owner: ConnectorOwner,
    /// The owning workspace; `null` for a global connector.
    pub workspace_id: Option<Uuid>,
    /// The whole `manifest.json`.
    pub manifest: Value,
    /// The package's other files: path to text.
    pub files: BTreeMap<String, String>,
    /// Hex SHA-256 of the package.
    pub digest: String,
    /// Its triggers, by key.
    pub triggers: Vec<ConnectorTrigger>,
    /// Its actions, by key.
    pub actions: Vec<ConnectorAction>,
    /// When it was installed.
    pub created_at: DateTime<Utc>,
}
