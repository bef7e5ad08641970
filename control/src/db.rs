//! The seam between the rules and the stores: a transaction that reads and writes rows and
//! decides nothing. Each store implements [`Tx`] once (`postgres.rs`, `sqlite.rs`, with the
//! same file names for the same concerns); every decision lives in `rules/`.
//!
//! Every method that touches a workspace's rows takes its id and filters on it, whatever
//! else walls the workspaces apart (row-level security on Postgres).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::Result;
use crate::model::{
    ApiKey, AuditEntry, ConnectorAction, ConnectorTrigger, ConnectorVersionInfo, Flow, FlowVersion,
    Hook, HookScheme, HookWithSecrets, KeyGrant, Member, NewApiKey, NewConnectorVersion, Tenant,
    Workspace,
};

pub(crate) mod postgres;
pub(crate) mod sqlite;

/// On whose behalf a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The system: tenants, users, authentication, webhook intake.
    System,
    /// A tenant request, confined to one workspace.
    Tenant(Uuid),
}

impl From<crate::Scope> for Access {
    fn from(scope: crate::Scope) -> Self {
        Access::Tenant(scope.workspace)
    }
}

/// A store that opens transactions.
#[async_trait]
pub(crate) trait Database: Send + Sync + std::fmt::Debug {
    /// Begins a transaction. Dropping it without [`Tx::commit`] rolls it back.
    async fn begin(&self, access: Access) -> Result<Box<dyn Tx>>;
}

/// A stored idempotency record.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyRow {
    pub request_hash: Vec<u8>,
    /// `None` while the first request is still being handled.
    pub status: Option<u16>,
    pub body: Option<Vec<u8>>,
    /// The permission the handler checked, if it checked one.
    pub permission: Option<String>,
}

/// Identifies one idempotency record: keys are per API key, as a client's retry comes with
/// the key that sent the first request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdempotencyId<'a> {
    pub workspace: Uuid,
    pub api_key: Uuid,
    pub key: &'a str,
}

/// A new hook's row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewHookRow<'a> {
    pub workflow_name: &'a str,
    pub scheme: HookScheme,
    pub secrets: &'a [String],
    /// `None` when off; whole seconds otherwise.
    pub dedupe_window: Option<Duration>,
}

/// Identifies the record of one body seen by one hook.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HookDeliveryId<'a> {
    pub workspace: Uuid,
    pub hook: Uuid,
    /// SHA-256 of the body.
    pub digest: &'a [u8; 32],
}

/// A connector's row. `workspace` is `None` for a global connector.
#[derive(Debug, Clone)]
pub(crate) struct ConnectorRow {
    pub id: Uuid,
    pub workspace: Option<Uuid>,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// A connector version's row, without its triggers and actions.
#[derive(Debug, Clone)]
pub(crate) struct ConnectorVersionRow {
    pub id: Uuid,
    pub version: String,
    pub manifest: Value,
    pub files: BTreeMap<String, String>,
    pub digest: String,
    pub created_at: DateTime<Utc>,
}

/// Row access inside one transaction. See the [module docs](self).
#[async_trait]
pub(crate) trait Tx: Send {
    /// Commits; the changes are durable when this returns.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Rolls back. A transaction dropped unfinished (its future cancelled) rolls back too.
    async fn rollback(self: Box<Self>);

    // --- tenants and workspaces (system) ---
    /// `None` if the slug is taken.
    async fn insert_tenant(&mut self, slug: &str, plan: &str) -> Result<Option<Tenant>>;
    async fn tenant_exists(&mut self, tenant: Uuid) -> Result<bool>;
    async fn insert_workspace(&mut self, tenant: Uuid, name: &str) -> Result<Workspace>;
    async fn workspace(&mut self, workspace: Uuid) -> Result<Option<Workspace>>;

    // --- API keys ---
    /// The grant of an unrevoked key with this hash (system).
    async fn grant(&mut self, token_hash: &[u8; 32]) -> Result<Option<KeyGrant>>;
    async fn insert_api_key(
        &mut self,
        workspace: Uuid,
        key: &NewApiKey,
        created_by: Option<Uuid>,
    ) -> Result<ApiKey>;
    async fn api_keys(&mut self, workspace: Uuid) -> Result<Vec<ApiKey>>;
    /// The key, locked until the end of the transaction.
    async fn api_key(&mut self, workspace: Uuid, id: Uuid) -> Result<Option<ApiKey>>;
    /// Stamps the key revoked now.
    async fn revoke_api_key(&mut self, workspace: Uuid, id: Uuid) -> Result<ApiKey>;

    // --- members ---
    /// The id of the user with this email, created if new (system).
    async fn user_for_email(&mut self, email: &str) -> Result<Uuid>;
    async fn put_member(&mut self, workspace: Uuid, user: Uuid, role: &str) -> Result<Member>;
    async fn members(&mut self, workspace: Uuid) -> Result<Vec<Member>>;
    async fn delete_member(&mut self, workspace: Uuid, user: Uuid) -> Result<bool>;

    // --- flows ---
    /// `None` if the workspace has a flow of that name.
    async fn insert_flow(
        &mut self,
        workspace: Uuid,
        name: &str,
        description: &str,
    ) -> Result<Option<Flow>>;
    async fn flows(&mut self, workspace: Uuid) -> Result<Vec<Flow>>;
    async fn flow(&mut self, workspace: Uuid, id: Uuid) -> Result<Option<Flow>>;
    async fn flow_named(&mut self, workspace: Uuid, name: &str) -> Result<Option<Flow>>;
    async fn update_flow(&mut self, workspace: Uuid, flow: &Flow) -> Result<Flow>;
    async fn delete_flow(&mut self, workspace: Uuid, id: Uuid) -> Result<()>;

    // --- flow versions ---
    /// A draft numbered one past the flow's highest.
    async fn insert_version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        definition: &Value,
    ) -> Result<FlowVersion>;
    async fn versions(&mut self, workspace: Uuid, flow: Uuid) -> Result<Vec<FlowVersion>>;
    /// The version, locked until the end of the transaction.
    async fn version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
    ) -> Result<Option<FlowVersion>>;
    async fn set_definition(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
        definition: &Value,
    ) -> Result<FlowVersion>;
    async fn publish_version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
    ) -> Result<FlowVersion>;
    async fn delete_version(&mut self, workspace: Uuid, flow: Uuid, version: i32) -> Result<()>;

    // --- hooks ---
    async fn insert_hook(&mut self, workspace: Uuid, hook: &NewHookRow<'_>) -> Result<Hook>;
    async fn hooks(&mut self, workspace: Uuid) -> Result<Vec<Hook>>;
    /// The hook with its secrets, locked until the end of the transaction.
    async fn hook(&mut self, workspace: Uuid, id: Uuid) -> Result<Option<HookWithSecrets>>;
    /// A hook of any workspace, for webhook intake (system).
    async fn hook_for_intake(&mut self, id: Uuid) -> Result<Option<HookWithSecrets>>;
    async fn set_hook_secrets(
        &mut self,
        workspace: Uuid,
        id: Uuid,
        secrets: &[String],
    ) -> Result<()>;
    async fn delete_hook(&mut self, workspace: Uuid, id: Uuid) -> Result<bool>;

    // --- hook deliveries ---
    /// Records that `delivery_id` brought the digest's body, unless a delivery did within
    /// `window` (by the database's clock): `true` if recorded, a record older than the window
    /// replaced. Otherwise the live record is left locked. Also forgets some of the hook's
    /// other expired records, without waiting for any.
    async fn claim_hook_delivery(
        &mut self,
        id: HookDeliveryId<'_>,
        delivery_id: &str,
        window: Duration,
    ) -> Result<bool>;
    /// The delivery that brought the digest's body, recorded by [`Tx::claim_hook_delivery`].
    async fn hook_delivery(&mut self, id: HookDeliveryId<'_>) -> Result<Option<String>>;
    /// Forgets the digest's record if `delivery_id` made it.
    async fn delete_hook_delivery(
        &mut self,
        id: HookDeliveryId<'_>,
        delivery_id: &str,
    ) -> Result<()>;

    // --- idempotency records ---
    /// Inserts a record for a new key, or replaces one older than `ttl` (by the database's
    /// clock); `true` if it did either. Otherwise the live record is left locked.
    async fn claim_idempotency(
        &mut self,
        id: IdempotencyId<'_>,
        request_hash: &[u8; 32],
        ttl: Duration,
    ) -> Result<bool>;
    async fn idempotency(&mut self, id: IdempotencyId<'_>) -> Result<Option<IdempotencyRow>>;
    /// Stores the response of an unfinished record; a stored one is never overwritten.
    async fn finish_idempotency(
        &mut self,
        id: IdempotencyId<'_>,
        status: u16,
        body: &[u8],
        permission: Option<&str>,
    ) -> Result<()>;
    /// Deletes an unfinished record.
    async fn abandon_idempotency(&mut self, id: IdempotencyId<'_>) -> Result<()>;

    // --- connectors: `owner` is the owning workspace, `None` for the global rows ---
    /// Serialises installs of connector `name`, whoever owns it, until the transaction ends:
    /// whether a global connector has the name must not change between check and insert.
    async fn lock_connector_name(&mut self, name: &str) -> Result<()>;
    async fn connector_named(
        &mut self,
        owner: Option<Uuid>,
        name: &str,
    ) -> Result<Option<ConnectorRow>>;
    async fn insert_connector(
        &mut self,
        owner: Option<Uuid>,
        name: &str,
        display_name: &str,
        description: &str,
    ) -> Result<ConnectorRow>;
    async fn relabel_connector(
        &mut self,
        owner: Option<Uuid>,
        id: Uuid,
        display_name: &str,
        description: &str,
    ) -> Result<ConnectorRow>;
    /// The workspace's connectors and the global ones, by name, the workspace's first.
    async fn visible_connectors(&mut self, workspace: Uuid) -> Result<Vec<ConnectorRow>>;
    /// The versions of [`Tx::visible_connectors`], each with its connector's id, most
    /// recently installed first.
    async fn visible_connector_versions(
        &mut self,
        workspace: Uuid,
    ) -> Result<Vec<(Uuid, ConnectorVersionInfo)>>;
    async fn connector_version(
        &mut self,
        owner: Option<Uuid>,
        connector: Uuid,
        version: &str,
    ) -> Result<Option<ConnectorVersionRow>>;
    /// Stores a version with its triggers and actions.
    async fn insert_connector_version(
        &mut self,
        owner: Option<Uuid>,
        connector: Uuid,
        package: &NewConnectorVersion,
    ) -> Result<ConnectorVersionInfo>;
    /// A version's triggers, by key.
    async fn connector_triggers(
        &mut self,
        owner: Option<Uuid>,
        version: Uuid,
    ) -> Result<Vec<ConnectorTrigger>>;
    /// A version's actions, by key.
    async fn connector_actions(
        &mut self,
        owner: Option<Uuid>,
        version: Uuid,
    ) -> Result<Vec<ConnectorAction>>;

    // --- audit log ---
    async fn insert_audit(&mut self, workspace: Uuid, entry: &NewAuditEntry) -> Result<()>;
    /// The newest entries first, at most `limit`.
    async fn audit(&mut self, workspace: Uuid, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// An audit entry as the rules made it.
#[derive(Debug, Clone)]
pub(crate) struct NewAuditEntry {
    pub actor: Option<Uuid>,
    pub action: &'static str,
    pub target: String,
    pub details: Value,
}
