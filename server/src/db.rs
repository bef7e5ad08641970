//! The control plane's storage: tenants, workspaces, members, API keys, flows, webhooks,
//! idempotency records and the audit log, on the same database as the runs.
//!
//! [`ControlStore`] has one implementation per store. Methods that take a [`Scope`] touch
//! that workspace's rows only; on Postgres they also run as role `durable_tenant` with the
//! workspace set for the transaction, so row-level security hides every other workspace even
//! from a query that forgets its `WHERE workspace_id = …`. Every change made through a
//! `Scope` writes its audit entry in the same transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

mod postgres;
mod sqlite;

pub use postgres::PgControl;
pub use sqlite::SqliteControl;

/// Errors of the control store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database failed or refused a statement.
    #[error(transparent)]
    Database(#[from] durable::Error),
    /// A unique name is taken (flow name, tenant slug).
    #[error("{0}")]
    Conflict(String),
    /// The row is immutable (a published flow version).
    #[error("{0}")]
    Immutable(String),
}

/// Result of the control store.
///
/// Audit actions written by the scoped changes, with their targets: `workspace.create`
/// (`workspace:<id>`), `api_key.create` / `api_key.revoke` (`api_key:<id>`), `member.put` /
/// `member.remove` (`user:<id>`), `flow.create` / `flow.update` / `flow.delete`
/// (`flow:<id>`), `flow_version.create` / `.update` / `.publish` / `.delete`
/// (`flow:<id>/versions/<n>`), `hook.create` / `hook.rotate` / `hook.delete` (`hook:<id>`). Details hold the
/// changed fields, never a secret or a token hash.
pub type DbResult<T> = Result<T, DbError>;

/// Who acts, and in which workspace: every scoped call needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// The workspace whose rows the call may touch.
    pub workspace: Uuid,
    /// The API key that acts; `None` for the system (bootstrap, `dev` set-up).
    pub actor: Option<Uuid>,
}

/// A tenant: the customer that owns workspaces.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

/// A workspace of a tenant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// What a valid, unrevoked API key grants.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key_id: Uuid,
    pub workspace_id: Uuid,
    pub tenant_id: Uuid,
    pub scopes: Vec<String>,
}

/// A new API key's stored parts (the token itself is never stored).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    /// SHA-256 of the whole token.
    pub token_hash: [u8; 32],
    /// The token's first characters, shown in listings.
    pub token_prefix: String,
    pub scopes: Vec<String>,
}

/// An API key as listed (no hash, no token).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub token_prefix: String,
    pub scopes: Vec<String>,
    /// The key that created this one; `None` if the system did.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A member of a workspace.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// A flow: a named graph whose definitions are its versions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Flow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A version of a flow's definition: a draft until published, immutable after.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlowVersion {
    pub flow_id: Uuid,
    /// 1, 2, 3… per flow.
    pub version: i32,
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// How a webhook proves where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Hook {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// The registered workflow each delivery starts.
    pub workflow_name: String,
    pub scheme: HookScheme,
    pub created_at: DateTime<Utc>,
}

/// A webhook endpoint with its secrets, newest first: for verifying deliveries only.
#[derive(Clone)]
pub struct HookWithSecrets {
    pub hook: Hook,
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

/// What the first request with an idempotency key left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is new (or its record expired): this request owns it now.
    Fresh,
    /// A request with the same key and the same body finished: replay its response.
    Replay { status: u16, body: Vec<u8> },
    /// A request with the same key but another body was made.
    Mismatch,
    /// A request with the same key is still being handled.
    InProgress,
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_key_id: Option<Uuid>,
    /// e.g. `flow.create`, `api_key.revoke`.
    pub action: String,
    /// e.g. `flow:<id>`.
    pub target: String,
    pub details: Value,
}

/// Fields of a flow that an update may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct FlowPatch {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// The control plane's storage. See the [module docs](self).
#[async_trait]
pub trait ControlStore: Send + Sync + std::fmt::Debug + 'static {
    // --- Unscoped: the server calls these before a tenant context exists. ---

    /// Creates a tenant; `Conflict` if the slug is taken.
    async fn create_tenant(&self, slug: &str, plan: &str) -> DbResult<Tenant>;

    /// Creates a workspace of a tenant (audited as `workspace.create` by `actor`).
    async fn create_workspace(
        &self,
        tenant: Uuid,
        name: &str,
        actor: Option<Uuid>,
    ) -> DbResult<Workspace>;

    /// The grant of an unrevoked key with this token hash.
    async fn authenticate(&self, token_hash: &[u8; 32]) -> DbResult<Option<KeyGrant>>;

    /// A webhook endpoint and its secrets, by id, for intake.
    async fn hook_for_intake(&self, hook: Uuid) -> DbResult<Option<HookWithSecrets>>;

    // --- Scoped: the rows of `scope.workspace` only. ---

    /// The scope's workspace.
    async fn workspace(&self, scope: Scope) -> DbResult<Workspace>;

    /// Stores a new key of the scope's workspace.
    async fn create_api_key(&self, scope: Scope, key: NewApiKey) -> DbResult<ApiKey>;
    async fn list_api_keys(&self, scope: Scope) -> DbResult<Vec<ApiKey>>;
    /// Revokes a key; `None` if there is no such key in the workspace. Revoking twice keeps
    /// the first time.
    async fn revoke_api_key(&self, scope: Scope, id: Uuid) -> DbResult<Option<ApiKey>>;

    /// Adds a member by email (creating the user if needed) or changes its role.
    async fn put_member(&self, scope: Scope, email: &str, role: &str) -> DbResult<Member>;
    async fn list_members(&self, scope: Scope) -> DbResult<Vec<Member>>;
    /// `false` if the user is not a member.
    async fn remove_member(&self, scope: Scope, user: Uuid) -> DbResult<bool>;

    /// `Conflict` if the workspace has a flow of that name.
    async fn create_flow(&self, scope: Scope, name: &str, description: &str) -> DbResult<Flow>;
    async fn list_flows(&self, scope: Scope) -> DbResult<Vec<Flow>>;
    async fn get_flow(&self, scope: Scope, id: Uuid) -> DbResult<Option<Flow>>;
    async fn update_flow(&self, scope: Scope, id: Uuid, patch: FlowPatch)
    -> DbResult<Option<Flow>>;
    /// Deletes the flow and its versions; `false` if there is no such flow.
    async fn delete_flow(&self, scope: Scope, id: Uuid) -> DbResult<bool>;

    /// Adds a draft version numbered one past the highest; `None` if there is no such flow.
    async fn create_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        definition: &Value,
    ) -> DbResult<Option<FlowVersion>>;
    async fn list_flow_versions(&self, scope: Scope, flow: Uuid) -> DbResult<Vec<FlowVersion>>;
    async fn get_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> DbResult<Option<FlowVersion>>;
    /// Replaces a draft's definition; `Immutable` if it is published.
    async fn update_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
        definition: &Value,
    ) -> DbResult<Option<FlowVersion>>;
    /// Publishes a draft; publishing a published version returns it unchanged.
    async fn publish_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> DbResult<Option<FlowVersion>>;
    /// Deletes a draft; `Immutable` if it is published, `false` if there is no such version.
    async fn delete_flow_version(&self, scope: Scope, flow: Uuid, version: i32) -> DbResult<bool>;

    async fn create_hook(
        &self,
        scope: Scope,
        workflow_name: &str,
        scheme: HookScheme,
        secrets: &[String],
    ) -> DbResult<Hook>;
    async fn list_hooks(&self, scope: Scope) -> DbResult<Vec<Hook>>;
    async fn get_hook(&self, scope: Scope, id: Uuid) -> DbResult<Option<Hook>>;
    async fn delete_hook(&self, scope: Scope, id: Uuid) -> DbResult<bool>;
    /// Puts `secret` first and keeps the `keep` newest of the current secrets after it
    /// (audited as `hook.rotate`, without the secrets); `None` if there is no such hook.
    async fn rotate_hook_secret(
        &self,
        scope: Scope,
        id: Uuid,
        secret: &str,
        keep: usize,
    ) -> DbResult<Option<Hook>>;

    /// Claims `key` for a request whose method, path and body hash to `request_hash`. A
    /// record older than `ttl` counts as absent and is replaced. Not audited.
    async fn begin_idempotent(
        &self,
        scope: Scope,
        key: &str,
        request_hash: &[u8; 32],
        ttl: std::time::Duration,
    ) -> DbResult<IdempotencyBegin>;
    /// Stores the response of the request that owns `key`.
    async fn finish_idempotent(
        &self,
        scope: Scope,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> DbResult<()>;
    /// Forgets an unfinished key (the request failed before it had a response to store).
    async fn abandon_idempotent(&self, scope: Scope, key: &str) -> DbResult<()>;

    /// The newest entries first, at most `limit`.
    async fn list_audit(&self, scope: Scope, limit: u32) -> DbResult<Vec<AuditEntry>>;
}
