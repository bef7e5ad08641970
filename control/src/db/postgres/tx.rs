//! [`Tx`] on Postgres: one statement per method, or two where a lock must come first.

use std::time::Duration;

use async_trait::async_trait;
use durable::tokio_postgres::types::Json;
use serde_json::Value;
use uuid::Uuid;

use super::PgTx;
use super::rows::{
    self, connector_cols, connector_version_cols, flow_cols, hook_cols, key_cols, tenant_cols,
    version_cols,
};
use crate::Result;
use crate::db::{
    ConnectorRow, ConnectorVersionRow, HookDeliveryId, IdempotencyId, IdempotencyRow,
    NewAuditEntry, NewHookRow, Tx,
};
use crate::model::{
    ApiKey, AuditEntry, ConnectorAction, ConnectorTrigger, ConnectorVersionInfo, Flow, FlowVersion,
    Hook, HookWithSecrets, KeyGrant, Member, NewApiKey, NewConnectorVersion, Tenant, Workspace,
};

/// Ttls longer than this count as this long: the interval arithmetic must not overflow.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A dedupe window as the `dedupe_window_secs` column keeps it.
fn window_secs(window: Duration) -> Result<i32> {
    i32::try_from(window.as_secs())
        .map_err(|_| crate::Error::Invalid("the dedupe window is too long".to_owned()))
}

/// The advisory-lock class of connector names (`conn`): the two-key form keeps these locks
/// apart from the one-key ones the migrations take.
const CONNECTOR_NAME_LOCK: i32 = 0x636f_6e6e;

/// The filter on the owner of a registry row, the owner being `$1`: that workspace's rows,
/// or the global ones when it is NULL. Two texts rather than `IS NOT DISTINCT FROM`, which
/// no index serves; `$1` appears in both so that its type is known.
fn owned_by(owner: Option<Uuid>) -> &'static str {
    match owner {
        Some(_) => "workspace_id = $1",
        None => "workspace_id IS NULL AND $1::uuid IS NULL",
    }
}

const MEMBERS: &str = "
SELECT m.user_id, u.email, m.role, m.created_at
FROM durable.workspace_members m JOIN durable.users u ON u.id = m.user_id
WHERE m.workspace_id = $1";

#[async_trait]
impl Tx for PgTx {
    async fn commit(self: Box<Self>) -> Result<()> {
        self.finish("COMMIT").await
    }

    async fn rollback(self: Box<Self>) {
        if let Err(err) = self.finish("ROLLBACK").await {
            tracing::warn!(error = %err, "rollback failed; the connection is closed instead");
        }
    }

    async fn insert_tenant(&mut self, slug: &str, plan: &str) -> Result<Option<Tenant>> {
        let row = self
            .query_opt(
                concat!(
                    "INSERT INTO durable.tenants (id, slug, plan) VALUES ($1, $2, $3)
                     ON CONFLICT (slug) DO NOTHING RETURNING ",
                    tenant_cols!()
                ),
                &[&Uuid::now_v7(), &slug, &plan],
            )
            .await?;
        row.as_ref().map(rows::tenant).transpose()
    }

    async fn tenant_exists(&mut self, tenant: Uuid) -> Result<bool> {
        let row = self
            .query_opt("SELECT 1 FROM durable.tenants WHERE id = $1", &[&tenant])
            .await?;
        Ok(row.is_some())
    }

    async fn insert_workspace(&mut self, tenant: Uuid, name: &str) -> Result<Workspace> {
        let id = Uuid::now_v7();
        self.execute(
            "INSERT INTO durable.workspaces (id, name) VALUES ($1, $2)",
            &[&id, &name],
        )
        .await?;
        self.execute(
            "INSERT INTO durable.tenant_workspaces (workspace_id, tenant_id) VALUES ($1, $2)",
            &[&id, &tenant],
        )
        .await?;
        let workspace = self.workspace(id).await?;
        workspace.ok_or_else(|| crate::error::corrupt("a new workspace could not be read"))
    }

    async fn workspace(&mut self, workspace: Uuid) -> Result<Option<Workspace>> {
        let row = self
            .query_opt(
                "SELECT w.id, t.tenant_id, w.name, w.created_at
                 FROM durable.workspaces w JOIN durable.tenant_workspaces t ON t.workspace_id = w.id
                 WHERE w.id = $1",
                &[&workspace],
            )
            .await?;
        row.as_ref().map(rows::workspace).transpose()
    }

    async fn grant(&mut self, token_hash: &[u8; 32]) -> Result<Option<KeyGrant>> {
        let row = self
            .query_opt(
                "SELECT k.id, k.workspace_id, t.tenant_id, k.scopes
                 FROM durable.api_keys k
                 JOIN durable.tenant_workspaces t ON t.workspace_id = k.workspace_id
                 WHERE k.token_hash = $1 AND k.revoked_at IS NULL",
                &[&token_hash.as_slice()],
            )
            .await?;
        row.as_ref().map(rows::grant).transpose()
    }

    async fn insert_api_key(
        &mut self,
        workspace: Uuid,
        key: &NewApiKey,
        created_by: Option<Uuid>,
    ) -> Result<ApiKey> {
        let row = self
            .query_one(
                concat!(
                    "INSERT INTO durable.api_keys
                         (workspace_id, id, name, token_hash, token_prefix, scopes, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     RETURNING ",
                    key_cols!()
                ),
                &[
                    &workspace,
                    &Uuid::now_v7(),
                    &key.name,
                    &key.token_hash.as_slice(),
                    &key.token_prefix,
                    &key.scopes,
                    &created_by,
                ],
            )
            .await?;
        rows::api_key(&row)
    }

    async fn api_keys(&mut self, workspace: Uuid) -> Result<Vec<ApiKey>> {
        // Locked: whether a key is the last admin must not change before the transaction ends.
        let found = self
            .query(
                concat!(
                    "SELECT ",
                    key_cols!(),
                    " FROM durable.api_keys WHERE workspace_id = $1
                      ORDER BY created_at, id FOR UPDATE"
                ),
                &[&workspace],
            )
            .await?;
        found.iter().map(rows::api_key).collect()
    }

    async fn api_key(&mut self, workspace: Uuid, id: Uuid) -> Result<Option<ApiKey>> {
        let row = self
            .query_opt(
                concat!(
                    "SELECT ",
                    key_cols!(),
                    " FROM durable.api_keys WHERE workspace_id = $1 AND id = $2 FOR UPDATE"
                ),
                &[&workspace, &id],
            )
            .await?;
        row.as_ref().map(rows::api_key).transpose()
    }

    async fn revoke_api_key(&mut self, workspace: Uuid, id: Uuid) -> Result<ApiKey> {
        let row = self
            .query_one(
                concat!(
                    "UPDATE durable.api_keys SET revoked_at = coalesce(revoked_at, now())
                     WHERE workspace_id = $1 AND id = $2 RETURNING ",
                    key_cols!()
                ),
                &[&workspace, &id],
            )
            .await?;
        rows::api_key(&row)
    }

    async fn user_for_email(&mut self, email: &str) -> Result<Uuid> {
        let row = self
            .query_one(
                // The no-op update makes RETURNING give the existing row's id too.
                "INSERT INTO durable.users (id, email) VALUES ($1, $2)
                 ON CONFLICT (email) DO UPDATE SET email = excluded.email
                 RETURNING id",
                &[&Uuid::now_v7(), &email],
            )
            .await?;
        Ok(row.try_get("id").map_err(durable::Error::from)?)
    }

    async fn put_member(&mut self, workspace: Uuid, user: Uuid, role: &str) -> Result<Member> {
        self.execute(
            "INSERT INTO durable.workspace_members (workspace_id, user_id, role)
             VALUES ($1, $2, $3)
             ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
            &[&workspace, &user, &role],
        )
        .await?;
        let row = self
            .query_one(
                &format!("{MEMBERS} AND m.user_id = $2"),
                &[&workspace, &user],
            )
            .await?;
        rows::member(&row)
    }

    async fn members(&mut self, workspace: Uuid) -> Result<Vec<Member>> {
        // Locked: whether a member is the last owner must not change before the end.
        let found = self
            .query(
                &format!("{MEMBERS} ORDER BY m.created_at, m.user_id FOR UPDATE OF m"),
                &[&workspace],
            )
            .await?;
        found.iter().map(rows::member).collect()
    }

    async fn delete_member(&mut self, workspace: Uuid, user: Uuid) -> Result<bool> {
        let deleted = self
            .execute(
                "DELETE FROM durable.workspace_members WHERE workspace_id = $1 AND user_id = $2",
                &[&workspace, &user],
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn insert_flow(
        &mut self,
        workspace: Uuid,
        name: &str,
        description: &str,
    ) -> Result<Option<Flow>> {
        let row = self
            .query_opt(
                concat!(
                    "INSERT INTO durable.flows (workspace_id, id, name, description)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (workspace_id, name) DO NOTHING RETURNING ",
                    flow_cols!()
                ),
                &[&workspace, &Uuid::now_v7(), &name, &description],
            )
            .await?;
        row.as_ref().map(rows::flow).transpose()
    }

    async fn flows(&mut self, workspace: Uuid) -> Result<Vec<Flow>> {
        let found = self
            .query(
                concat!(
                    "SELECT ",
                    flow_cols!(),
                    " FROM durable.flows WHERE workspace_id = $1 ORDER BY created_at, id"
                ),
                &[&workspace],
            )
            .await?;
        found.iter().map(rows::flow).collect()
    }

    async fn flow(&mut self, workspace: Uuid, id: Uuid) -> Result<Option<Flow>> {
        let row = self
            .query_opt(
                concat!(
                    "SELECT ",
                    flow_cols!(),
                    " FROM durable.flows WHERE workspace_id = $1 AND id = $2"
                ),
                &[&workspace, &id],
            )
            .await?;
        row.as_ref().map(rows::flow).transpose()
    }

    async fn flow_named(&mut self, workspace: Uuid, name: &str) -> Result<Option<Flow>> {
        let row = self
            .query_opt(
                concat!(
                    "SELECT ",
                    flow_cols!(),
                    " FROM durable.flows WHERE workspace_id = $1 AND name = $2"
                ),
                &[&workspace, &name],
            )
            .await?;
        row.as_ref().map(rows::flow).transpose()
    }

    async fn update_flow(&mut self, workspace: Uuid, flow: &Flow) -> Result<Flow> {
        let row = self
            .query_one(
                concat!(
                    "UPDATE durable.flows SET name = $3, description = $4, updated_at = now()
                     WHERE workspace_id = $1 AND id = $2 RETURNING ",
                    flow_cols!()
                ),
                &[&workspace, &flow.id, &flow.name, &flow.description],
            )
            .await?;
        rows::flow(&row)
    }

    async fn delete_flow(&mut self, workspace: Uuid, id: Uuid) -> Result<()> {
        self.execute(
            "DELETE FROM durable.flows WHERE workspace_id = $1 AND id = $2",
            &[&workspace, &id],
        )
        .await?;
        Ok(())
    }

    async fn insert_version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        definition: &Value,
    ) -> Result<FlowVersion> {
        // The flow's lock orders concurrent creations, so each sees the other's number.
        self.execute(
            "SELECT 1 FROM durable.flows WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
            &[&workspace, &flow],
        )
        .await?;
        let row = self
            .query_one(
                concat!(
                    "INSERT INTO durable.flow_versions (workspace_id, flow_id, version, definition)
                     SELECT $1, $2, coalesce(max(version), 0) + 1, $3
                     FROM durable.flow_versions WHERE workspace_id = $1 AND flow_id = $2
                     RETURNING ",
                    version_cols!()
                ),
                &[&workspace, &flow, definition],
            )
            .await?;
        rows::version(&row)
    }

    async fn versions(&mut self, workspace: Uuid, flow: Uuid) -> Result<Vec<FlowVersion>> {
        let found = self
            .query(
                concat!(
                    "SELECT ",
                    version_cols!(),
                    " FROM durable.flow_versions WHERE workspace_id = $1 AND flow_id = $2
                      ORDER BY version"
                ),
                &[&workspace, &flow],
            )
            .await?;
        found.iter().map(rows::version).collect()
    }

    async fn version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
    ) -> Result<Option<FlowVersion>> {
        let row = self
            .query_opt(
                concat!(
                    "SELECT ",
                    version_cols!(),
                    " FROM durable.flow_versions
                      WHERE workspace_id = $1 AND flow_id = $2 AND version = $3 FOR UPDATE"
                ),
                &[&workspace, &flow, &version],
            )
            .await?;
        row.as_ref().map(rows::version).transpose()
    }

    async fn set_definition(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
        definition: &Value,
    ) -> Result<FlowVersion> {
        let row = self
            .query_one(
                concat!(
                    "UPDATE durable.flow_versions SET definition = $4
                     WHERE workspace_id = $1 AND flow_id = $2 AND version = $3 RETURNING ",
                    version_cols!()
                ),
                &[&workspace, &flow, &version, definition],
            )
            .await?;
        rows::version(&row)
    }

    async fn publish_version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
    ) -> Result<FlowVersion> {
        let row = self
            .query_one(
                concat!(
                    "UPDATE durable.flow_versions SET published_at = now()
                     WHERE workspace_id = $1 AND flow_id = $2 AND version = $3 RETURNING ",
                    version_cols!()
                ),
                &[&workspace, &flow, &version],
            )
            .await?;
        rows::version(&row)
    }

    async fn delete_version(&mut self, workspace: Uuid, flow: Uuid, version: i32) -> Result<()> {
        self.execute(
            "DELETE FROM durable.flow_versions
             WHERE workspace_id = $1 AND flow_id = $2 AND version = $3",
            &[&workspace, &flow, &version],
        )
        .await?;
        Ok(())
    }

    async fn insert_hook(&mut self, workspace: Uuid, hook: &NewHookRow<'_>) -> Result<Hook> {
        let window = hook.dedupe_window.map(window_secs).transpose()?;
        let row = self
            .query_one(
                concat!(
                    "INSERT INTO durable.hooks
                         (workspace_id, id, workflow_name, scheme, secrets, dedupe_window_secs)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
                    hook_cols!()
                ),
                &[
                    &workspace,
                    &Uuid::now_v7(),
                    &hook.workflow_name,
                    &hook.scheme.as_str(),
                    &hook.secrets,
                    &window,
                ],
            )
            .await?;
        Ok(rows::hook(&row)?.hook)
    }

    async fn hooks(&mut self, workspace: Uuid) -> Result<Vec<Hook>> {
        let found = self
            .query(
                concat!(
                    "SELECT ",
                    hook_cols!(),
                    " FROM durable.hooks WHERE workspace_id = $1 ORDER BY created_at, id"
                ),
                &[&workspace],
            )
            .await?;
        found.iter().map(|r| Ok(rows::hook(r)?.hook)).collect()
    }

    async fn hook(&mut self, workspace: Uuid, id: Uuid) -> Result<Option<HookWithSecrets>> {
        let row = self
            .query_opt(
                concat!(
                    "SELECT ",
                    hook_cols!(),
                    " FROM durable.hooks WHERE workspace_id = $1 AND id = $2 FOR UPDATE"
                ),
                &[&workspace, &id],
            )
            .await?;
        row.as_ref().map(rows::hook).transpose()
    }

    async fn hook_for_intake(&mut self, id: Uuid) -> Result<Option<HookWithSecrets>> {
        let row = self
            .query_opt(
                concat!("SELECT ", hook_cols!(), " FROM durable.hooks WHERE id = $1"),
                &[&id],
            )
            .await?;
        row.as_ref().map(rows::hook).transpose()
    }

    async fn set_hook_secrets(
        &mut self,
        workspace: Uuid,
        id: Uuid,
        secrets: &[String],
    ) -> Result<()> {
        self.execute(
            "UPDATE durable.hooks SET secrets = $3 WHERE workspace_id = $1 AND id = $2",
            &[&workspace, &id, &secrets],
        )
        .await?;
        Ok(())
    }

    async fn delete_hook(&mut self, workspace: Uuid, id: Uuid) -> Result<bool> {
        let deleted = self
            .execute(
                "DELETE FROM durable.hooks WHERE workspace_id = $1 AND id = $2",
                &[&workspace, &id],
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn claim_hook_delivery(
        &mut self,
        id: HookDeliveryId<'_>,
        delivery_id: &str,
        window: Duration,
    ) -> Result<bool> {
        let window = i64::from(window_secs(window)?);
        let digest = id.digest.as_slice();
        // Housekeeping, bounded and without waiting on rows another delivery holds.
        self.execute(
            "DELETE FROM durable.hook_deliveries
             WHERE (hook_id, body_digest) IN (
                 SELECT hook_id, body_digest FROM durable.hook_deliveries
                 WHERE workspace_id = $1 AND hook_id = $2 AND body_digest <> $3
                   AND received_at <= now() - $4::int8 * interval '1 second'
                 LIMIT 100 FOR UPDATE SKIP LOCKED)",
            &[&id.workspace, &id.hook, &digest, &window],
        )
        .await?;
        // One statement records a new digest or replaces an expired record; otherwise it
        // has locked the live record, which cannot vanish before it is read.
        let claimed = self
            .query_opt(
                "INSERT INTO durable.hook_deliveries AS d
                     (workspace_id, hook_id, body_digest, delivery_id)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (hook_id, body_digest) DO UPDATE
                 SET delivery_id = excluded.delivery_id, received_at = now()
                 WHERE d.received_at <= now() - $5::int8 * interval '1 second'
                 RETURNING 1",
                &[&id.workspace, &id.hook, &digest, &delivery_id, &window],
            )
            .await?;
        Ok(claimed.is_some())
    }

    async fn hook_delivery(&mut self, id: HookDeliveryId<'_>) -> Result<Option<String>> {
        let row = self
            .query_opt(
                "SELECT delivery_id FROM durable.hook_deliveries
                 WHERE workspace_id = $1 AND hook_id = $2 AND body_digest = $3",
                &[&id.workspace, &id.hook, &id.digest.as_slice()],
            )
            .await?;
        row.map(|r| {
            r.try_get("delivery_id")
                .map_err(|e| durable::Error::from(e).into())
        })
        .transpose()
    }

    async fn delete_hook_delivery(
        &mut self,
        id: HookDeliveryId<'_>,
        delivery_id: &str,
    ) -> Result<()> {
        self.execute(
            "DELETE FROM durable.hook_deliveries
             WHERE workspace_id = $1 AND hook_id = $2 AND body_digest = $3 AND delivery_id = $4",
            &[&id.workspace, &id.hook, &id.digest.as_slice(), &delivery_id],
        )
        .await?;
        Ok(())
    }

    async fn claim_idempotency(
        &mut self,
        id: IdempotencyId<'_>,
        request_hash: &[u8; 32],
        ttl: Duration,
    ) -> Result<bool> {
        let ttl_micros = i64::try_from(ttl.min(MAX_TTL).as_micros()).unwrap_or(i64::MAX);
        // One statement claims a new key or an expired record (by the database's clock);
        // otherwise it has locked the live record, which cannot vanish before it is read.
        let claimed = self
            .query_opt(
                "INSERT INTO durable.idempotency_keys AS i
                     (workspace_id, api_key_id, key, request_hash)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (workspace_id, api_key_id, key) DO UPDATE
                 SET request_hash = excluded.request_hash, status_code = NULL,
                     response_body = NULL, permission = NULL, created_at = now()
                 WHERE now() - i.created_at > $5::int8 * interval '1 microsecond'
                 RETURNING 1",
                &[
                    &id.workspace,
                    &id.api_key,
                    &id.key,
                    &request_hash.as_slice(),
                    &ttl_micros,
                ],
            )
            .await?;
        Ok(claimed.is_some())
    }

    async fn idempotency(&mut self, id: IdempotencyId<'_>) -> Result<Option<IdempotencyRow>> {
        let row = self
            .query_opt(
                "SELECT request_hash, status_code, response_body, permission
                 FROM durable.idempotency_keys
                 WHERE workspace_id = $1 AND api_key_id = $2 AND key = $3",
                &[&id.workspace, &id.api_key, &id.key],
            )
            .await?;
        row.as_ref().map(rows::idempotency).transpose()
    }

    async fn finish_idempotency(
        &mut self,
        id: IdempotencyId<'_>,
        status: u16,
        body: &[u8],
        permission: Option<&str>,
    ) -> Result<()> {
        self.execute(
            "UPDATE durable.idempotency_keys
             SET status_code = $4, response_body = $5, permission = $6
             WHERE workspace_id = $1 AND api_key_id = $2 AND key = $3 AND status_code IS NULL",
            &[
                &id.workspace,
                &id.api_key,
                &id.key,
                &i32::from(status),
                &body,
                &permission,
            ],
        )
        .await?;
        Ok(())
    }

    async fn abandon_idempotency(&mut self, id: IdempotencyId<'_>) -> Result<()> {
        self.execute(
            "DELETE FROM durable.idempotency_keys
             WHERE workspace_id = $1 AND api_key_id = $2 AND key = $3 AND status_code IS NULL",
            &[&id.workspace, &id.api_key, &id.key],
        )
        .await?;
        Ok(())
    }

    async fn lock_connector_name(&mut self, name: &str) -> Result<()> {
        self.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&CONNECTOR_NAME_LOCK, &name],
        )
        .await?;
        Ok(())
    }

    async fn connector_named(
        &mut self,
        owner: Option<Uuid>,
        name: &str,
    ) -> Result<Option<ConnectorRow>> {
        let sql = format!(
            concat!(
                "SELECT ",
                connector_cols!(),
                " FROM durable.connectors WHERE {} AND name = $2"
            ),
            owned_by(owner)
        );
        let row = self.query_opt(&sql, &[&owner, &name]).await?;
        row.as_ref().map(rows::connector).transpose()
    }

    async fn insert_connector(
        &mut self,
        owner: Option<Uuid>,
        name: &str,
        display_name: &str,
        description: &str,
    ) -> Result<ConnectorRow> {
        let row = self
            .query_one(
                concat!(
                    "INSERT INTO durable.connectors
                         (workspace_id, id, name, display_name, description)
                     VALUES ($1, $2, $3, $4, $5) RETURNING ",
                    connector_cols!()
                ),
                &[&owner, &Uuid::now_v7(), &name, &display_name, &description],
            )
            .await?;
        rows::connector(&row)
    }

    async fn relabel_connector(
        &mut self,
        owner: Option<Uuid>,
        id: Uuid,
        display_name: &str,
        description: &str,
    ) -> Result<ConnectorRow> {
        let sql = format!(
            concat!(
                "UPDATE durable.connectors SET display_name = $3, description = $4
                 WHERE {} AND id = $2 RETURNING ",
                connector_cols!()
            ),
            owned_by(owner)
        );
        let row = self
            .query_one(&sql, &[&owner, &id, &display_name, &description])
            .await?;
        rows::connector(&row)
    }

    async fn visible_connectors(&mut self, workspace: Uuid) -> Result<Vec<ConnectorRow>> {
        // Collation "C": the same order as SQLite's, whatever the database's locale.
        let found = self
            .query(
                concat!(
                    "SELECT ",
                    connector_cols!(),
                    " FROM durable.connectors WHERE workspace_id = $1 OR workspace_id IS NULL
                      ORDER BY name COLLATE \"C\", workspace_id NULLS LAST"
                ),
                &[&workspace],
            )
            .await?;
        found.iter().map(rows::connector).collect()
    }

    async fn visible_connector_versions(
        &mut self,
        workspace: Uuid,
    ) -> Result<Vec<(Uuid, ConnectorVersionInfo)>> {
        let found = self
            .query(
                "SELECT connector_id, version, digest, created_at FROM durable.connector_versions
                 WHERE workspace_id = $1 OR workspace_id IS NULL
                 ORDER BY created_at DESC, id DESC",
                &[&workspace],
            )
            .await?;
        found.iter().map(rows::connector_version_info).collect()
    }

    async fn connector_version(
        &mut self,
        owner: Option<Uuid>,
        connector: Uuid,
        version: &str,
    ) -> Result<Option<ConnectorVersionRow>> {
        let sql = format!(
            concat!(
                "SELECT ",
                connector_version_cols!(),
                " FROM durable.connector_versions
                  WHERE {} AND connector_id = $2 AND version = $3"
            ),
            owned_by(owner)
        );
        let row = self
            .query_opt(&sql, &[&owner, &connector, &version])
            .await?;
        row.as_ref().map(rows::connector_version).transpose()
    }

    async fn insert_connector_version(
        &mut self,
        owner: Option<Uuid>,
        connector: Uuid,
        package: &NewConnectorVersion,
    ) -> Result<ConnectorVersionInfo> {
        let id = Uuid::now_v7();
        let row = self
            .query_one(
                "INSERT INTO durable.connector_versions
                     (workspace_id, id, connector_id, version, manifest, files, digest)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 RETURNING connector_id, version, digest, created_at",
                &[
                    &owner,
                    &id,
                    &connector,
                    &package.version,
                    &package.manifest,
                    &Json(&package.files),
                    &package.digest,
                ],
            )
            .await?;
        self.insert_triggers(owner, id, &package.triggers).await?;
        self.insert_actions(owner, id, &package.actions).await?;
        Ok(rows::connector_version_info(&row)?.1)
    }

    async fn connector_triggers(
        &mut self,
        owner: Option<Uuid>,
        version: Uuid,
    ) -> Result<Vec<ConnectorTrigger>> {
        let sql = format!(
            "SELECT key, kind, display_name, description, payload_schema
             FROM durable.connector_triggers WHERE {} AND version_id = $2
             ORDER BY key COLLATE \"C\"",
            owned_by(owner)
        );
        let found = self.query(&sql, &[&owner, &version]).await?;
        found.iter().map(rows::connector_trigger).collect()
    }

    async fn connector_actions(
        &mut self,
        owner: Option<Uuid>,
        version: Uuid,
    ) -> Result<Vec<ConnectorAction>> {
        let sql = format!(
            "SELECT key, display_name, description, input_schema, output_schema
             FROM durable.connector_actions WHERE {} AND version_id = $2
             ORDER BY key COLLATE \"C\"",
            owned_by(owner)
        );
        let found = self.query(&sql, &[&owner, &version]).await?;
        found.iter().map(rows::connector_action).collect()
    }

    async fn insert_audit(&mut self, workspace: Uuid, entry: &NewAuditEntry) -> Result<()> {
        self.execute(
            "INSERT INTO durable.audit_log (workspace_id, id, actor_key_id, action, target, details)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &workspace,
                &Uuid::now_v7(),
                &entry.actor,
                &entry.action,
                &entry.target,
                &entry.details,
            ],
        )
        .await?;
        Ok(())
    }

    async fn audit(&mut self, workspace: Uuid, limit: u32) -> Result<Vec<AuditEntry>> {
        let found = self
            .query(
                "SELECT id, at, actor_key_id, action, target, details FROM durable.audit_log
                 WHERE workspace_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
                &[&workspace, &i64::from(limit)],
            )
            .await?;
        found.iter().map(rows::audit).collect()
    }
}

impl PgTx {
    /// A version's triggers, in one statement however many.
    async fn insert_triggers(
        &self,
        owner: Option<Uuid>,
        version: Uuid,
        triggers: &[ConnectorTrigger],
    ) -> Result<()> {
        if triggers.is_empty() {
            return Ok(());
        }
        let column =
            |f: fn(&ConnectorTrigger) -> &str| -> Vec<&str> { triggers.iter().map(f).collect() };
        let schemas: Vec<Option<&Value>> =
            triggers.iter().map(|t| t.payload_schema.as_ref()).collect();
        self.execute(
            "INSERT INTO durable.connector_triggers
                 (workspace_id, version_id, key, kind, display_name, description, payload_schema)
             SELECT $1::uuid, $2::uuid, *
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])",
            &[
                &owner,
                &version,
                &column(|t| &t.key),
                &column(|t| t.kind.as_str()),
                &column(|t| &t.display_name),
                &column(|t| &t.description),
                &schemas,
            ],
        )
        .await?;
        Ok(())
    }

    /// A version's actions, in one statement however many.
    async fn insert_actions(
        &self,
        owner: Option<Uuid>,
        version: Uuid,
        actions: &[ConnectorAction],
    ) -> Result<()> {
        if actions.is_empty() {
            return Ok(());
        }
        let column =
            |f: fn(&ConnectorAction) -> &str| -> Vec<&str> { actions.iter().map(f).collect() };
        let inputs: Vec<&Value> = actions.iter().map(|a| &a.input_schema).collect();
        let outputs: Vec<Option<&Value>> =
            actions.iter().map(|a| a.output_schema.as_ref()).collect();
        self.execute(
            "INSERT INTO durable.connector_actions
                 (workspace_id, version_id, key, display_name, description, input_schema,
                  output_schema)
             SELECT $1::uuid, $2::uuid, *
             FROM unnest($3::text[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])",
            &[
                &owner,
                &version,
                &column(|a| &a.key),
                &column(|a| &a.display_name),
                &column(|a| &a.description),
                &inputs,
                &outputs,
            ],
        )
        .await?;
        Ok(())
    }
}
