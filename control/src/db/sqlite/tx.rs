//! [`Tx`] on SQLite: each method sends one closure to the database thread.

use std::time::Duration;

use async_trait::async_trait;
use durable::rusqlite::{OptionalExtension, Params, Row, Transaction, params};
use serde_json::Value;
use uuid::Uuid;

use super::SqliteTx;
use super::rows::{
    self, CONNECTOR_COLS, CONNECTOR_VERSION_COLS, FLOW_COLS, HOOK_COLS, KEY_COLS, TENANT_COLS,
    VERSION_COLS, db, id, json_text, now,
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

const MEMBERS: &str = "
SELECT m.user_id, u.email, m.role, m.created_at
FROM workspace_members m JOIN users u ON u.id = m.user_id
WHERE m.workspace_id = ?1";

fn execute(tx: &Transaction<'_>, sql: &str, params: impl Params) -> Result<usize> {
    tx.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(db)
}

fn query_opt<T>(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl Params,
    map: fn(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut statement = tx.prepare_cached(sql).map_err(db)?;
    let mut found = statement.query(params).map_err(db)?;
    found.next().map_err(db)?.map(map).transpose()
}

fn query_one<T>(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl Params,
    map: fn(&Row<'_>) -> Result<T>,
) -> Result<T> {
    query_opt(tx, sql, params, map)?
        .ok_or_else(|| crate::error::corrupt("a statement that returns a row returned none"))
}

fn query_all<T>(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl Params,
    map: fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = tx.prepare_cached(sql).map_err(db)?;
    let mut found = statement.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = found.next().map_err(db)? {
        out.push(map(row)?);
    }
    Ok(out)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A dedupe window as the `dedupe_window_secs` column keeps it.
fn secs(window: Duration) -> Result<i64> {
    i64::try_from(window.as_secs())
        .map_err(|_| crate::Error::Invalid("the dedupe window is too long".to_owned()))
}

/// Stores a trigger of version `version_id` (both ids as stored).
fn insert_trigger(
    tx: &Transaction<'_>,
    owner: Option<&str>,
    version_id: &str,
    trigger: &ConnectorTrigger,
) -> Result<()> {
    let schema = trigger.payload_schema.as_ref().map(json_text).transpose()?;
    execute(
        tx,
        "INSERT INTO connector_triggers
             (workspace_id, version_id, key, kind, display_name, description, payload_schema)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            owner,
            version_id,
            trigger.key,
            trigger.kind.as_str(),
            trigger.display_name,
            trigger.description,
            schema
        ],
    )?;
    Ok(())
}

/// Stores an action of version `version_id` (both ids as stored).
fn insert_action(
    tx: &Transaction<'_>,
    owner: Option<&str>,
    version_id: &str,
    action: &ConnectorAction,
) -> Result<()> {
    let output = action.output_schema.as_ref().map(json_text).transpose()?;
    execute(
        tx,
        "INSERT INTO connector_actions
             (workspace_id, version_id, key, display_name, description, input_schema,
              output_schema)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            owner,
            version_id,
            action.key,
            action.display_name,
            action.description,
            json_text(&action.input_schema)?,
            output
        ],
    )?;
    Ok(())
}

#[async_trait]
impl Tx for SqliteTx {
    async fn commit(self: Box<Self>) -> Result<()> {
        (*self).commit_now().await
    }

    async fn rollback(self: Box<Self>) {
        // Dropping the handle ends the thread's loop, which drops the transaction.
    }

    async fn insert_tenant(&mut self, slug: &str, plan: &str) -> Result<Option<Tenant>> {
        let (slug, plan) = (slug.to_owned(), plan.to_owned());
        self.call(move |tx| {
            let sql = format!(
                "INSERT INTO tenants (id, slug, plan, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (slug) DO NOTHING RETURNING {TENANT_COLS}"
            );
            query_opt(
                tx,
                &sql,
                params![id(Uuid::now_v7()), slug, plan, now()],
                rows::tenant,
            )
        })
        .await
    }

    async fn tenant_exists(&mut self, tenant: Uuid) -> Result<bool> {
        self.call(move |tx| {
            let sql = "SELECT 1 FROM tenants WHERE id = ?1";
            let found = tx.query_row(sql, [id(tenant)], |_| Ok(())).optional();
            Ok(found.map_err(db)?.is_some())
        })
        .await
    }

    async fn insert_workspace(&mut self, tenant: Uuid, name: &str) -> Result<Workspace> {
        let name = name.to_owned();
        let workspace = Uuid::now_v7();
        self.call(move |tx| {
            execute(
                tx,
                "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![id(workspace), name, now()],
            )?;
            execute(
                tx,
                "INSERT INTO tenant_workspaces (workspace_id, tenant_id) VALUES (?1, ?2)",
                params![id(workspace), id(tenant)],
            )?;
            Ok(())
        })
        .await?;
        let created = self.workspace(workspace).await?;
        created.ok_or_else(|| crate::error::corrupt("a new workspace could not be read"))
    }

    async fn workspace(&mut self, workspace: Uuid) -> Result<Option<Workspace>> {
        self.call(move |tx| {
            query_opt(
                tx,
                "SELECT w.id, t.tenant_id, w.name, w.created_at
                 FROM workspaces w JOIN tenant_workspaces t ON t.workspace_id = w.id
                 WHERE w.id = ?1",
                [id(workspace)],
                rows::workspace,
            )
        })
        .await
    }

    async fn grant(&mut self, token_hash: &[u8; 32]) -> Result<Option<KeyGrant>> {
        let hash = token_hash.to_vec();
        self.call(move |tx| {
            query_opt(
                tx,
                "SELECT k.id, k.workspace_id, t.tenant_id, k.scopes
                 FROM api_keys k JOIN tenant_workspaces t ON t.workspace_id = k.workspace_id
                 WHERE k.token_hash = ?1 AND k.revoked_at IS NULL",
                [hash],
                rows::grant,
            )
        })
        .await
    }

    async fn insert_api_key(
        &mut self,
        workspace: Uuid,
        key: &NewApiKey,
        created_by: Option<Uuid>,
    ) -> Result<ApiKey> {
        let key = key.clone();
        self.call(move |tx| {
            let sql = format!(
                "INSERT INTO api_keys (workspace_id, id, name, token_hash, token_prefix, scopes,
                                       created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING {KEY_COLS}"
            );
            let values = params![
                id(workspace),
                id(Uuid::now_v7()),
                key.name,
                key.token_hash.to_vec(),
                key.token_prefix,
                json_text(&key.scopes)?,
                created_by.map(id),
                now(),
            ];
            query_one(tx, &sql, values, rows::api_key)
        })
        .await
    }

    async fn api_keys(&mut self, workspace: Uuid) -> Result<Vec<ApiKey>> {
        self.call(move |tx| {
            let sql = format!(
                "SELECT {KEY_COLS} FROM api_keys WHERE workspace_id = ?1 ORDER BY created_at, id"
            );
            query_all(tx, &sql, [id(workspace)], rows::api_key)
        })
        .await
    }

    async fn api_key(&mut self, workspace: Uuid, key: Uuid) -> Result<Option<ApiKey>> {
        self.call(move |tx| {
            let sql =
                format!("SELECT {KEY_COLS} FROM api_keys WHERE workspace_id = ?1 AND id = ?2");
            query_opt(tx, &sql, [id(workspace), id(key)], rows::api_key)
        })
        .await
    }

    async fn revoke_api_key(&mut self, workspace: Uuid, key: Uuid) -> Result<ApiKey> {
        self.call(move |tx| {
            let sql = format!(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?3)
                 WHERE workspace_id = ?1 AND id = ?2 RETURNING {KEY_COLS}"
            );
            query_one(
                tx,
                &sql,
                params![id(workspace), id(key), now()],
                rows::api_key,
            )
        })
        .await
    }

    async fn user_for_email(&mut self, email: &str) -> Result<Uuid> {
        let email = email.to_owned();
        let text: String = self
            .call(move |tx| {
                execute(
                    tx,
                    "INSERT INTO users (id, email, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (email) DO NOTHING",
                    params![id(Uuid::now_v7()), email, now()],
                )?;
                tx.query_row("SELECT id FROM users WHERE email = ?1", [email], |r| {
                    r.get(0)
                })
                .map_err(db)
            })
            .await?;
        Uuid::parse_str(&text).map_err(|e| crate::error::corrupt(format!("user id `{text}`: {e}")))
    }

    async fn put_member(&mut self, workspace: Uuid, user: Uuid, role: &str) -> Result<Member> {
        let role = role.to_owned();
        self.call(move |tx| {
            execute(
                tx,
                "INSERT INTO workspace_members (workspace_id, user_id, role, created_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
                params![id(workspace), id(user), role, now()],
            )?;
            let sql = format!("{MEMBERS} AND m.user_id = ?2");
            query_one(tx, &sql, [id(workspace), id(user)], rows::member)
        })
        .await
    }

    async fn members(&mut self, workspace: Uuid) -> Result<Vec<Member>> {
        self.call(move |tx| {
            let sql = format!("{MEMBERS} ORDER BY m.created_at, m.user_id");
            query_all(tx, &sql, [id(workspace)], rows::member)
        })
        .await
    }

    async fn delete_member(&mut self, workspace: Uuid, user: Uuid) -> Result<bool> {
        self.call(move |tx| {
            let sql = "DELETE FROM workspace_members WHERE workspace_id = ?1 AND user_id = ?2";
            Ok(execute(tx, sql, [id(workspace), id(user)])? > 0)
        })
        .await
    }

    async fn insert_flow(
        &mut self,
        workspace: Uuid,
        name: &str,
        description: &str,
    ) -> Result<Option<Flow>> {
        let (name, description) = (name.to_owned(), description.to_owned());
        self.call(move |tx| {
            let sql = format!(
                "INSERT INTO flows (workspace_id, id, name, description, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (workspace_id, name) DO NOTHING RETURNING {FLOW_COLS}"
            );
            let values = params![id(workspace), id(Uuid::now_v7()), name, description, now()];
            query_opt(tx, &sql, values, rows::flow)
        })
        .await
    }

    async fn flows(&mut self, workspace: Uuid) -> Result<Vec<Flow>> {
        self.call(move |tx| {
            let sql = format!(
                "SELECT {FLOW_COLS} FROM flows WHERE workspace_id = ?1 ORDER BY created_at, id"
            );
            query_all(tx, &sql, [id(workspace)], rows::flow)
        })
        .await
    }

    async fn flow(&mut self, workspace: Uuid, flow: Uuid) -> Result<Option<Flow>> {
        self.call(move |tx| {
            let sql = format!("SELECT {FLOW_COLS} FROM flows WHERE workspace_id = ?1 AND id = ?2");
            query_opt(tx, &sql, [id(workspace), id(flow)], rows::flow)
        })
        .await
    }

    async fn flow_named(&mut self, workspace: Uuid, name: &str) -> Result<Option<Flow>> {
        let name = name.to_owned();
        self.call(move |tx| {
            let sql =
                format!("SELECT {FLOW_COLS} FROM flows WHERE workspace_id = ?1 AND name = ?2");
            query_opt(tx, &sql, params![id(workspace), name], rows::flow)
        })
        .await
    }

    async fn update_flow(&mut self, workspace: Uuid, flow: &Flow) -> Result<Flow> {
        let flow = flow.clone();
        self.call(move |tx| {
            let sql = format!(
                "UPDATE flows SET name = ?3, description = ?4, updated_at = ?5
                 WHERE workspace_id = ?1 AND id = ?2 RETURNING {FLOW_COLS}"
            );
            let values = params![
                id(workspace),
                id(flow.id),
                flow.name,
                flow.description,
                now()
            ];
            query_one(tx, &sql, values, rows::flow)
        })
        .await
    }

    async fn delete_flow(&mut self, workspace: Uuid, flow: Uuid) -> Result<()> {
        self.call(move |tx| {
            // Versions first: the store does not rely on foreign-key enforcement being on.
            let ids = [id(workspace), id(flow)];
            execute(
                tx,
                "DELETE FROM flow_versions WHERE workspace_id = ?1 AND flow_id = ?2",
                ids.clone(),
            )?;
            execute(
                tx,
                "DELETE FROM flows WHERE workspace_id = ?1 AND id = ?2",
                ids,
            )?;
            Ok(())
        })
        .await
    }

    async fn insert_version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        definition: &Value,
    ) -> Result<FlowVersion> {
        let definition = json_text(definition)?;
        self.call(move |tx| {
            let sql = format!(
                "INSERT INTO flow_versions (workspace_id, flow_id, version, definition, created_at)
                 SELECT ?1, ?2, coalesce(max(version), 0) + 1, ?3, ?4
                 FROM flow_versions WHERE workspace_id = ?1 AND flow_id = ?2
                 RETURNING {VERSION_COLS}"
            );
            let values = params![id(workspace), id(flow), definition, now()];
            query_one(tx, &sql, values, rows::version)
        })
        .await
    }

    async fn versions(&mut self, workspace: Uuid, flow: Uuid) -> Result<Vec<FlowVersion>> {
        self.call(move |tx| {
            let sql = format!(
                "SELECT {VERSION_COLS} FROM flow_versions
                 WHERE workspace_id = ?1 AND flow_id = ?2 ORDER BY version"
            );
            query_all(tx, &sql, [id(workspace), id(flow)], rows::version)
        })
        .await
    }

    async fn version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
    ) -> Result<Option<FlowVersion>> {
        self.call(move |tx| {
            let sql = format!(
                "SELECT {VERSION_COLS} FROM flow_versions
                 WHERE workspace_id = ?1 AND flow_id = ?2 AND version = ?3"
            );
            query_opt(
                tx,
                &sql,
                params![id(workspace), id(flow), version],
                rows::version,
            )
        })
        .await
    }

    async fn set_definition(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
        definition: &Value,
    ) -> Result<FlowVersion> {
        let definition = json_text(definition)?;
        self.call(move |tx| {
            let sql = format!(
                "UPDATE flow_versions SET definition = ?4
                 WHERE workspace_id = ?1 AND flow_id = ?2 AND version = ?3 RETURNING {VERSION_COLS}"
            );
            let values = params![id(workspace), id(flow), version, definition];
            query_one(tx, &sql, values, rows::version)
        })
        .await
    }

    async fn publish_version(
        &mut self,
        workspace: Uuid,
        flow: Uuid,
        version: i32,
    ) -> Result<FlowVersion> {
        self.call(move |tx| {
            let sql = format!(
                "UPDATE flow_versions SET published_at = ?4
                 WHERE workspace_id = ?1 AND flow_id = ?2 AND version = ?3 RETURNING {VERSION_COLS}"
            );
            let values = params![id(workspace), id(flow), version, now()];
            query_one(tx, &sql, values, rows::version)
        })
        .await
    }

    async fn delete_version(&mut self, workspace: Uuid, flow: Uuid, version: i32) -> Result<()> {
        self.call(move |tx| {
            let sql = "DELETE FROM flow_versions
                       WHERE workspace_id = ?1 AND flow_id = ?2 AND version = ?3";
            execute(tx, sql, params![id(workspace), id(flow), version])?;
            Ok(())
        })
        .await
    }

    async fn insert_hook(&mut self, workspace: Uuid, hook: &NewHookRow<'_>) -> Result<Hook> {
        let workflow_name = hook.workflow_name.to_owned();
        let scheme = hook.scheme.as_str();
        let secrets = json_text(&hook.secrets)?;
        let window = hook.dedupe_window.map(secs).transpose()?;
        self.call(move |tx| {
            let sql = format!(
                "INSERT INTO hooks
                     (workspace_id, id, workflow_name, scheme, secrets, dedupe_window_secs,
                      created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {HOOK_COLS}"
            );
            let values = params![
                id(workspace),
                id(Uuid::now_v7()),
                workflow_name,
                scheme,
                secrets,
                window,
                now()
            ];
            Ok(query_one(tx, &sql, values, rows::hook)?.hook)
        })
        .await
    }

    async fn hooks(&mut self, workspace: Uuid) -> Result<Vec<Hook>> {
        self.call(move |tx| {
            let sql = format!(
                "SELECT {HOOK_COLS} FROM hooks WHERE workspace_id = ?1 ORDER BY created_at, id"
            );
            let found = query_all(tx, &sql, [id(workspace)], rows::hook)?;
            Ok(found.into_iter().map(|h| h.hook).collect())
        })
        .await
    }

    async fn hook(&mut self, workspace: Uuid, hook: Uuid) -> Result<Option<HookWithSecrets>> {
        self.call(move |tx| {
            let sql = format!("SELECT {HOOK_COLS} FROM hooks WHERE workspace_id = ?1 AND id = ?2");
            query_opt(tx, &sql, [id(workspace), id(hook)], rows::hook)
        })
        .await
    }

    async fn hook_for_intake(&mut self, hook: Uuid) -> Result<Option<HookWithSecrets>> {
        self.call(move |tx| {
            let sql = format!("SELECT {HOOK_COLS} FROM hooks WHERE id = ?1");
            query_opt(tx, &sql, [id(hook)], rows::hook)
        })
        .await
    }

    async fn set_hook_secrets(
        &mut self,
        workspace: Uuid,
        hook: Uuid,
        secrets: &[String],
    ) -> Result<()> {
        let secrets = json_text(&secrets)?;
        self.call(move |tx| {
            let sql = "UPDATE hooks SET secrets = ?3 WHERE workspace_id = ?1 AND id = ?2";
            execute(tx, sql, params![id(workspace), id(hook), secrets])?;
            Ok(())
        })
        .await
    }

    async fn delete_hook(&mut self, workspace: Uuid, hook: Uuid) -> Result<bool> {
        self.call(move |tx| {
            // Deliveries first: the store does not rely on foreign-key enforcement being on.
            let ids = [id(workspace), id(hook)];
            let sql = "DELETE FROM hook_deliveries WHERE workspace_id = ?1 AND hook_id = ?2";
            execute(tx, sql, ids.clone())?;
            let sql = "DELETE FROM hooks WHERE workspace_id = ?1 AND id = ?2";
            Ok(execute(tx, sql, ids)? > 0)
        })
        .await
    }

    async fn claim_hook_delivery(
        &mut self,
        delivery: HookDeliveryId<'_>,
        delivery_id: &str,
        window: Duration,
    ) -> Result<bool> {
        let (workspace, hook) = (id(delivery.workspace), id(delivery.hook));
        let (digest, delivery_id) = (delivery.digest.to_vec(), delivery_id.to_owned());
        self.call(move |tx| {
            let now = now();
            let expired_by = now.saturating_sub(micros(window));
            // The write lock taken at BEGIN makes the transaction alone here: the
            // housekeeping waits for no one.
            execute(
                tx,
                "DELETE FROM hook_deliveries
                 WHERE workspace_id = ?1 AND hook_id = ?2 AND body_digest <> ?3
                   AND received_at <= ?4",
                params![workspace, hook, digest, expired_by],
            )?;
            let claimed = query_opt(
                tx,
                "INSERT INTO hook_deliveries AS d
                     (workspace_id, hook_id, body_digest, delivery_id, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (hook_id, body_digest) DO UPDATE
                 SET delivery_id = excluded.delivery_id, received_at = excluded.received_at
                 WHERE d.received_at <= ?6
                 RETURNING 1",
                params![workspace, hook, digest, delivery_id, now, expired_by],
                |_| Ok(()),
            )?;
            Ok(claimed.is_some())
        })
        .await
    }

    async fn hook_delivery(&mut self, delivery: HookDeliveryId<'_>) -> Result<Option<String>> {
        let (workspace, hook) = (id(delivery.workspace), id(delivery.hook));
        let digest = delivery.digest.to_vec();
        self.call(move |tx| {
            query_opt(
                tx,
                "SELECT delivery_id FROM hook_deliveries
                 WHERE workspace_id = ?1 AND hook_id = ?2 AND body_digest = ?3",
                params![workspace, hook, digest],
                |row| row.get("delivery_id").map_err(db),
            )
        })
        .await
    }

    async fn delete_hook_delivery(
        &mut self,
        delivery: HookDeliveryId<'_>,
        delivery_id: &str,
    ) -> Result<()> {
        let (workspace, hook) = (id(delivery.workspace), id(delivery.hook));
        let (digest, delivery_id) = (delivery.digest.to_vec(), delivery_id.to_owned());
        self.call(move |tx| {
            execute(
                tx,
                "DELETE FROM hook_deliveries
                 WHERE workspace_id = ?1 AND hook_id = ?2 AND body_digest = ?3
                   AND delivery_id = ?4",
                params![workspace, hook, digest, delivery_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn claim_idempotency(
        &mut self,
        record: IdempotencyId<'_>,
        request_hash: &[u8; 32],
        ttl: Duration,
    ) -> Result<bool> {
        let (workspace, api_key, key) = (record.workspace, record.api_key, record.key.to_owned());
        let hash = request_hash.to_vec();
        self.call(move |tx| {
            let now = now();
            let expired_before = now.saturating_sub(micros(ttl));
            let claimed = query_opt(
                tx,
                "INSERT INTO idempotency_keys AS i
                     (workspace_id, api_key_id, key, request_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (workspace_id, api_key_id, key) DO UPDATE
                 SET request_hash = excluded.request_hash, status_code = NULL,
                     response_body = NULL, permission = NULL, created_at = excluded.created_at
                 WHERE i.created_at < ?6
                 RETURNING 1",
                params![id(workspace), id(api_key), key, hash, now, expired_before],
                |_| Ok(()),
            )?;
            Ok(claimed.is_some())
        })
        .await
    }

    async fn idempotency(&mut self, record: IdempotencyId<'_>) -> Result<Option<IdempotencyRow>> {
        let (workspace, api_key, key) = (record.workspace, record.api_key, record.key.to_owned());
        self.call(move |tx| {
            query_opt(
                tx,
                "SELECT request_hash, status_code, response_body, permission
                 FROM idempotency_keys WHERE workspace_id = ?1 AND api_key_id = ?2 AND key = ?3",
                params![id(workspace), id(api_key), key],
                rows::idempotency,
            )
        })
        .await
    }

    async fn finish_idempotency(
        &mut self,
        record: IdempotencyId<'_>,
        status: u16,
        body: &[u8],
        permission: Option<&str>,
    ) -> Result<()> {
        let (workspace, api_key, key) = (record.workspace, record.api_key, record.key.to_owned());
        let (body, permission) = (body.to_vec(), permission.map(str::to_owned));
        self.call(move |tx| {
            execute(
                tx,
                "UPDATE idempotency_keys SET status_code = ?4, response_body = ?5, permission = ?6
                 WHERE workspace_id = ?1 AND api_key_id = ?2 AND key = ?3
                   AND status_code IS NULL",
                params![id(workspace), id(api_key), key, status, body, permission],
            )?;
            Ok(())
        })
        .await
    }

    async fn abandon_idempotency(&mut self, record: IdempotencyId<'_>) -> Result<()> {
        let (workspace, api_key, key) = (record.workspace, record.api_key, record.key.to_owned());
        self.call(move |tx| {
            execute(
                tx,
                "DELETE FROM idempotency_keys
                 WHERE workspace_id = ?1 AND api_key_id = ?2 AND key = ?3 AND status_code IS NULL",
                params![id(workspace), id(api_key), key],
            )?;
            Ok(())
        })
        .await
    }

    async fn lock_connector_name(&mut self, _name: &str) -> Result<()> {
        // The write lock taken at BEGIN already makes the transaction alone here.
        Ok(())
    }

    async fn connector_named(
        &mut self,
        owner: Option<Uuid>,
        name: &str,
    ) -> Result<Option<ConnectorRow>> {
        let name = name.to_owned();
        self.call(move |tx| {
            // `IS` matches NULL to NULL: the global rows when there is no owner.
            let sql = format!(
                "SELECT {CONNECTOR_COLS} FROM connectors WHERE workspace_id IS ?1 AND name = ?2"
            );
            query_opt(tx, &sql, params![owner.map(id), name], rows::connector)
        })
        .await
    }

    async fn insert_connector(
        &mut self,
        owner: Option<Uuid>,
        name: &str,
        display_name: &str,
        description: &str,
    ) -> Result<ConnectorRow> {
        let labels = [name, display_name, description].map(str::to_owned);
        self.call(move |tx| {
            let sql = format!(
                "INSERT INTO connectors
                     (workspace_id, id, name, display_name, description, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING {CONNECTOR_COLS}"
            );
            let [name, display_name, description] = labels;
            let values = params![
                owner.map(id),
                id(Uuid::now_v7()),
                name,
                display_name,
                description,
                now()
            ];
            query_one(tx, &sql, values, rows::connector)
        })
        .await
    }

    async fn relabel_connector(
        &mut self,
        owner: Option<Uuid>,
        connector: Uuid,
        display_name: &str,
        description: &str,
    ) -> Result<ConnectorRow> {
        let (display_name, description) = (display_name.to_owned(), description.to_owned());
        self.call(move |tx| {
            let sql = format!(
                "UPDATE connectors SET display_name = ?3, description = ?4
                 WHERE workspace_id IS ?1 AND id = ?2 RETURNING {CONNECTOR_COLS}"
            );
            let values = params![owner.map(id), id(connector), display_name, description];
            query_one(tx, &sql, values, rows::connector)
        })
        .await
    }

    async fn visible_connectors(&mut self, workspace: Uuid) -> Result<Vec<ConnectorRow>> {
        self.call(move |tx| {
            let sql = format!(
                "SELECT {CONNECTOR_COLS} FROM connectors
                 WHERE workspace_id = ?1 OR workspace_id IS NULL
                 ORDER BY name, workspace_id NULLS LAST"
            );
            query_all(tx, &sql, [id(workspace)], rows::connector)
        })
        .await
    }

    async fn visible_connector_versions(
        &mut self,
        workspace: Uuid,
    ) -> Result<Vec<(Uuid, ConnectorVersionInfo)>> {
        self.call(move |tx| {
            query_all(
                tx,
                "SELECT connector_id, version, digest, created_at FROM connector_versions
                 WHERE workspace_id = ?1 OR workspace_id IS NULL
                 ORDER BY created_at DESC, id DESC",
                [id(workspace)],
                rows::connector_version_info,
            )
        })
        .await
    }

    async fn connector_version(
        &mut self,
        owner: Option<Uuid>,
        connector: Uuid,
        version: &str,
    ) -> Result<Option<ConnectorVersionRow>> {
        let version = version.to_owned();
        self.call(move |tx| {
            let sql = format!(
                "SELECT {CONNECTOR_VERSION_COLS} FROM connector_versions
                 WHERE workspace_id IS ?1 AND connector_id = ?2 AND version = ?3"
            );
            let values = params![owner.map(id), id(connector), version];
            query_opt(tx, &sql, values, rows::connector_version)
        })
        .await
    }

    async fn insert_connector_version(
        &mut self,
        owner: Option<Uuid>,
        connector: Uuid,
        package: &NewConnectorVersion,
    ) -> Result<ConnectorVersionInfo> {
        let manifest = json_text(&package.manifest)?;
        let files = json_text(&package.files)?;
        let (version, digest) = (package.version.clone(), package.digest.clone());
        let (triggers, actions) = (package.triggers.clone(), package.actions.clone());
        self.call(move |tx| {
            let (owner, version_id) = (owner.map(id), id(Uuid::now_v7()));
            let info = query_one(
                tx,
                "INSERT INTO connector_versions
                     (workspace_id, id, connector_id, version, manifest, files, digest, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 RETURNING connector_id, version, digest, created_at",
                params![
                    owner,
                    version_id,
                    id(connector),
                    version,
                    manifest,
                    files,
                    digest,
                    now()
                ],
                rows::connector_version_info,
            )?;
            for trigger in &triggers {
                insert_trigger(tx, owner.as_deref(), &version_id, trigger)?;
            }
            for action in &actions {
                insert_action(tx, owner.as_deref(), &version_id, action)?;
            }
            Ok(info.1)
        })
        .await
    }

    async fn connector_triggers(
        &mut self,
        owner: Option<Uuid>,
        version: Uuid,
    ) -> Result<Vec<ConnectorTrigger>> {
        self.call(move |tx| {
            query_all(
                tx,
                "SELECT key, kind, display_name, description, payload_schema
                 FROM connector_triggers WHERE workspace_id IS ?1 AND version_id = ?2
                 ORDER BY key",
                [owner.map(id), Some(id(version))],
                rows::connector_trigger,
            )
        })
        .await
    }

    async fn connector_actions(
        &mut self,
        owner: Option<Uuid>,
        version: Uuid,
    ) -> Result<Vec<ConnectorAction>> {
        self.call(move |tx| {
            query_all(
                tx,
                "SELECT key, display_name, description, input_schema, output_schema
                 FROM connector_actions WHERE workspace_id IS ?1 AND version_id = ?2
                 ORDER BY key",
                [owner.map(id), Some(id(version))],
                rows::connector_action,
            )
        })
        .await
    }

    async fn insert_audit(&mut self, workspace: Uuid, entry: &NewAuditEntry) -> Result<()> {
        let entry = entry.clone();
        let details = json_text(&entry.details)?;
        self.call(move |tx| {
            execute(
                tx,
                "INSERT INTO audit_log (workspace_id, id, at, actor_key_id, action, target, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id(workspace),
                    id(Uuid::now_v7()),
                    now(),
                    entry.actor.map(id),
                    entry.action,
                    entry.target,
                    details
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn audit(&mut self, workspace: Uuid, limit: u32) -> Result<Vec<AuditEntry>> {
        self.call(move |tx| {
            query_all(
                tx,
                "SELECT id, at, actor_key_id, action, target, details FROM audit_log
                 WHERE workspace_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
                params![id(workspace), limit],
                rows::audit,
            )
        })
        .await
    }
}
