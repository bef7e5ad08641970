//! [`PgControl`]: the control store on Postgres.
//!
//! Unscoped calls run as the connecting role, which owns the tables and is not subject to
//! row-level security. Every scoped call runs in one transaction as role `durable_tenant`
//! with `durable.workspace_id` set for that transaction only (see [`PgControl::in_tenant`]).
//! The statements still filter on the workspace themselves: the policies are the second
//! wall, not the first.

use std::time::Duration;

use async_trait::async_trait;
use durable::deadpool_postgres::{GenericClient, Pool, PoolError, Transaction};
use durable::tokio_postgres::error::SqlState;
use durable::tokio_postgres::types::ToSql;
use durable::tokio_postgres::{self, Row};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    ApiKey, AuditEntry, ControlStore, DbError, DbResult, Flow, FlowPatch, FlowVersion, Hook,
    HookScheme, HookWithSecrets, IdempotencyBegin, KeyGrant, Member, NewApiKey, Scope, Tenant,
    Workspace,
};

type PgError = tokio_postgres::Error;
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl From<PgError> for DbError {
    fn from(err: PgError) -> Self {
        DbError::Database(err.into())
    }
}

impl From<PoolError> for DbError {
    fn from(err: PoolError) -> Self {
        DbError::Database(err.into())
    }
}

/// The control store on the database of a [`durable::PgStore`], sharing its pool.
#[derive(Clone)]
pub struct PgControl {
    pool: Pool,
}

impl std::fmt::Debug for PgControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's config holds the password: show its size only.
        let status = self.pool.status();
        f.debug_struct("PgControl")
            .field("pool_size", &status.size)
            .field("pool_max", &status.max_size)
            .finish()
    }
}

// Column lists as macros, so `concat!` builds each statement as one `&'static str`.
macro_rules! workspace_cols {
    () => {
        "id, tenant_id, name, created_at"
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
        "id, workspace_id, workflow_name, scheme, created_at"
    };
}

/// Enters the tenant context for the rest of the transaction. `set_config('role', …)` is
/// `SET LOCAL ROLE` in a form that fits in the same statement, saving a round trip.
const ENTER_TENANT: &str = "
SELECT set_config('role', 'durable_tenant', true),
       set_config('durable.workspace_id', $1, true)";

const INSERT_AUDIT: &str = "
INSERT INTO durable.audit_log (workspace_id, id, actor_key_id, action, target, details)
VALUES ($1, $2, $3, $4, $5, $6)";

/// Ttls longer than this count as this long: the interval arithmetic must not overflow.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl PgControl {
    /// A control store on `store`'s database (whose migrations created the tables).
    pub fn new(store: &durable::PgStore) -> Self {
        Self {
            pool: store.pool().clone(),
        }
    }

    /// Runs `sql` as the tenant of `workspace`, exactly as the scoped methods run theirs:
    /// row-level security shows it that workspace's rows only, whatever its `WHERE` says.
    /// For tests and diagnostics: never pass it SQL built from a request.
    pub async fn query_as_tenant(&self, workspace: Uuid, sql: &str) -> DbResult<Vec<Row>> {
        let scope = Scope {
            workspace,
            actor: None,
        };
        self.in_tenant(scope, async |tx| Ok(tx.query(sql, &[]).await?))
            .await
    }

    /// Runs `body` in one transaction as role `durable_tenant` with the scope's workspace
    /// set, and commits if it succeeds. Both settings are `LOCAL`, so they end with the
    /// transaction and the pooled connection goes back as the owner role.
    async fn in_tenant<T>(
        &self,
        scope: Scope,
        body: impl AsyncFnOnce(&Transaction<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        execute(&tx, ENTER_TENANT, &[&scope.workspace.to_string()]).await?;
        let value = body(&tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// The id of the user with this email, created if new. Users are global, and the tenant
    /// role may only read them, so this runs as the owner, before the tenant transaction;
    /// a user left behind by a failed membership is harmless.
    async fn user_id(&self, email: &str) -> DbResult<Uuid> {
        let client = self.pool.get().await?;
        execute(
            &client,
            "INSERT INTO durable.users (id, email) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING",
            &[&Uuid::now_v7(), &email],
        )
        .await?;
        // A statement of its own: its snapshot sees a row a concurrent insert committed.
        let row = query_one(
            &client,
            "SELECT id FROM durable.users WHERE email = $1",
            &[&email],
        )
        .await?;
        Ok(row.try_get("id")?)
    }
}

#[async_trait]
impl ControlStore for PgControl {
    async fn create_tenant(&self, slug: &str, plan: &str) -> DbResult<Tenant> {
        let client = self.pool.get().await?;
        let row = query_one(
            &client,
            "INSERT INTO durable.tenants (id, slug, plan) VALUES ($1, $2, $3)
             RETURNING id, slug, plan, created_at",
            &[&Uuid::now_v7(), &slug, &plan],
        )
        .await
        .map_err(|e| {
            unique_conflict(e, "tenants_slug_key", || {
                format!("a tenant with slug `{slug}` already exists")
            })
        })?;
        tenant(&row)
    }

    async fn create_workspace(
        &self,
        tenant: Uuid,
        name: &str,
        actor: Option<Uuid>,
    ) -> DbResult<Workspace> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let id = Uuid::now_v7();
        let row = query_one(
            &tx,
            concat!(
                "INSERT INTO durable.workspaces (id, tenant_id, name) VALUES ($1, $2, $3)
                 RETURNING ",
                workspace_cols!()
            ),
            &[&id, &tenant, &name],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                DbError::Database(durable::Error::Invalid(format!("no tenant {tenant}")))
            } else {
                e.into()
            }
        })?;
        let workspace = workspace(&row)?;
        let details = json!({ "name": name, "tenant_id": tenant });
        let scope = Scope {
            workspace: id,
            actor,
        };
        audit(
            &tx,
            scope,
            "workspace.create",
            &format!("workspace:{id}"),
            details,
        )
        .await?;
        tx.commit().await?;
        Ok(workspace)
    }

    async fn authenticate(&self, token_hash: &[u8; 32]) -> DbResult<Option<KeyGrant>> {
        let client = self.pool.get().await?;
        let row = query_opt(
            &client,
            "SELECT k.id, k.workspace_id, w.tenant_id, k.scopes
             FROM durable.api_keys k JOIN durable.workspaces w ON w.id = k.workspace_id
             WHERE k.token_hash = $1 AND k.revoked_at IS NULL",
            &[&token_hash.as_slice()],
        )
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(KeyGrant {
            key_id: row.try_get("id")?,
            workspace_id: row.try_get("workspace_id")?,
            tenant_id: row.try_get("tenant_id")?,
            scopes: row.try_get("scopes")?,
        }))
    }

    async fn hook_for_intake(&self, id: Uuid) -> DbResult<Option<HookWithSecrets>> {
        let client = self.pool.get().await?;
        let row = query_opt(
            &client,
            concat!(
                "SELECT ",
                hook_cols!(),
                ", secrets FROM durable.hooks WHERE id = $1"
            ),
            &[&id],
        )
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(HookWithSecrets {
            hook: hook(&row)?,
            secrets: row.try_get("secrets")?,
        }))
    }

    async fn workspace(&self, scope: Scope) -> DbResult<Workspace> {
        self.in_tenant(scope, async |tx| {
            let row = query_opt(
                tx,
                concat!(
                    "SELECT ",
                    workspace_cols!(),
                    " FROM durable.workspaces WHERE id = $1"
                ),
                &[&scope.workspace],
            )
            .await?;
            // A scope comes from a key of an existing workspace: a missing one is a fault.
            let row =
                row.ok_or_else(|| corrupt(format!("workspace {} not found", scope.workspace)))?;
            workspace(&row)
        })
        .await
    }

    async fn create_api_key(&self, scope: Scope, key: NewApiKey) -> DbResult<ApiKey> {
        self.in_tenant(scope, async |tx| {
            let row = query_one(
                tx,
                concat!(
                    "INSERT INTO durable.api_keys
                         (workspace_id, id, name, token_hash, token_prefix, scopes, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     RETURNING ",
                    key_cols!()
                ),
                &[
                    &scope.workspace,
                    &Uuid::now_v7(),
                    &key.name,
                    &key.token_hash.as_slice(),
                    &key.token_prefix,
                    &key.scopes,
                    &scope.actor,
                ],
            )
            .await?;
            let created = api_key(&row)?;
            let details = json!({
                "name": created.name,
                "token_prefix": created.token_prefix,
                "scopes": created.scopes,
            });
            let target = format!("api_key:{}", created.id);
            audit(tx, scope, "api_key.create", &target, details).await?;
            Ok(created)
        })
        .await
    }

    async fn list_api_keys(&self, scope: Scope) -> DbResult<Vec<ApiKey>> {
        self.in_tenant(scope, async |tx| {
            let rows = query(
                tx,
                concat!(
                    "SELECT ",
                    key_cols!(),
                    " FROM durable.api_keys WHERE workspace_id = $1 ORDER BY created_at, id"
                ),
                &[&scope.workspace],
            )
            .await?;
            rows.iter().map(api_key).collect()
        })
        .await
    }

    async fn revoke_api_key(&self, scope: Scope, id: Uuid) -> DbResult<Option<ApiKey>> {
        self.in_tenant(scope, async |tx| {
            // Locked first, to know whether this call is the one that revokes it: a second
            // revocation changes nothing and is not audited.
            let current = query_opt(
                tx,
                "SELECT revoked_at IS NULL AS active FROM durable.api_keys
                 WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
                &[&scope.workspace, &id],
            )
            .await?;
            let Some(current) = current else {
                return Ok(None);
            };
            let row = query_one(
                tx,
                concat!(
                    "UPDATE durable.api_keys SET revoked_at = coalesce(revoked_at, now())
                     WHERE workspace_id = $1 AND id = $2 RETURNING ",
                    key_cols!()
                ),
                &[&scope.workspace, &id],
            )
            .await?;
            if current.try_get::<_, bool>("active")? {
                let target = format!("api_key:{id}");
                audit(tx, scope, "api_key.revoke", &target, json!({})).await?;
            }
            api_key(&row).map(Some)
        })
        .await
    }

    async fn put_member(&self, scope: Scope, email: &str, role: &str) -> DbResult<Member> {
        let user = self.user_id(email).await?;
        self.in_tenant(scope, async |tx| {
            let row = query_one(
                tx,
                "INSERT INTO durable.workspace_members (workspace_id, user_id, role)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role
                 RETURNING role, created_at",
                &[&scope.workspace, &user, &role],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&SqlState::CHECK_VIOLATION) {
                    let message =
                        format!("role `{role}` is not one of owner, admin, member, viewer");
                    DbError::Database(durable::Error::Invalid(message))
                } else {
                    e.into()
                }
            })?;
            let details = json!({ "email": email, "role": role });
            audit(tx, scope, "member.put", &format!("user:{user}"), details).await?;
            Ok(Member {
                user_id: user,
                email: email.to_owned(),
                role: row.try_get("role")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .await
    }

    async fn list_members(&self, scope: Scope) -> DbResult<Vec<Member>> {
        self.in_tenant(scope, async |tx| {
            let rows = query(
                tx,
                "SELECT m.user_id, u.email, m.role, m.created_at
                 FROM durable.workspace_members m JOIN durable.users u ON u.id = m.user_id
                 WHERE m.workspace_id = $1
                 ORDER BY m.created_at, m.user_id",
                &[&scope.workspace],
            )
            .await?;
            rows.iter().map(member).collect()
        })
        .await
    }

    async fn remove_member(&self, scope: Scope, user: Uuid) -> DbResult<bool> {
        self.in_tenant(scope, async |tx| {
            let row = query_opt(
                tx,
                "DELETE FROM durable.workspace_members WHERE workspace_id = $1 AND user_id = $2
                 RETURNING role",
                &[&scope.workspace, &user],
            )
            .await?;
            let Some(row) = row else { return Ok(false) };
            let details = json!({ "role": row.try_get::<_, String>("role")? });
            audit(tx, scope, "member.remove", &format!("user:{user}"), details).await?;
            Ok(true)
        })
        .await
    }

    async fn create_flow(&self, scope: Scope, name: &str, description: &str) -> DbResult<Flow> {
        self.in_tenant(scope, async |tx| {
            let row = query_one(
                tx,
                concat!(
                    "INSERT INTO durable.flows (workspace_id, id, name, description)
                     VALUES ($1, $2, $3, $4) RETURNING ",
                    flow_cols!()
                ),
                &[&scope.workspace, &Uuid::now_v7(), &name, &description],
            )
            .await
            .map_err(|e| flow_name_conflict(e, name))?;
            let flow = flow(&row)?;
            let details = json!({ "name": name, "description": description });
            audit(
                tx,
                scope,
                "flow.create",
                &format!("flow:{}", flow.id),
                details,
            )
            .await?;
            Ok(flow)
        })
        .await
    }

    async fn list_flows(&self, scope: Scope) -> DbResult<Vec<Flow>> {
        self.in_tenant(scope, async |tx| {
            let rows = query(
                tx,
                concat!(
                    "SELECT ",
                    flow_cols!(),
                    " FROM durable.flows WHERE workspace_id = $1 ORDER BY created_at, id"
                ),
                &[&scope.workspace],
            )
            .await?;
            rows.iter().map(flow).collect()
        })
        .await
    }

    async fn get_flow(&self, scope: Scope, id: Uuid) -> DbResult<Option<Flow>> {
        self.in_tenant(scope, async |tx| {
            let row = query_opt(
                tx,
                concat!(
                    "SELECT ",
                    flow_cols!(),
                    " FROM durable.flows WHERE workspace_id = $1 AND id = $2"
                ),
                &[&scope.workspace, &id],
            )
            .await?;
            row.as_ref().map(flow).transpose()
        })
        .await
    }

    async fn update_flow(
        &self,
        scope: Scope,
        id: Uuid,
        patch: FlowPatch,
    ) -> DbResult<Option<Flow>> {
        if patch.name.is_none() && patch.description.is_none() {
            // Nothing changes, so nothing is written or audited.
            return self.get_flow(scope, id).await;
        }
        self.in_tenant(scope, async |tx| {
            let row = query_opt(
                tx,
                concat!(
                    "UPDATE durable.flows
                     SET name = coalesce($3, name), description = coalesce($4, description),
                         updated_at = now()
                     WHERE workspace_id = $1 AND id = $2 RETURNING ",
                    flow_cols!()
                ),
                &[&scope.workspace, &id, &patch.name, &patch.description],
            )
            .await
            .map_err(|e| flow_name_conflict(e, patch.name.as_deref().unwrap_or_default()))?;
            let Some(row) = row else { return Ok(None) };
            let mut details = Map::new();
            if let Some(name) = &patch.name {
                details.insert("name".to_owned(), name.as_str().into());
            }
            if let Some(description) = &patch.description {
                details.insert("description".to_owned(), description.as_str().into());
            }
            let target = format!("flow:{id}");
            audit(tx, scope, "flow.update", &target, details.into()).await?;
            flow(&row).map(Some)
        })
        .await
    }

    async fn delete_flow(&self, scope: Scope, id: Uuid) -> DbResult<bool> {
        self.in_tenant(scope, async |tx| {
            // Its versions go with it (ON DELETE CASCADE).
            let row = query_opt(
                tx,
                "DELETE FROM durable.flows WHERE workspace_id = $1 AND id = $2 RETURNING name",
                &[&scope.workspace, &id],
            )
            .await?;
            let Some(row) = row else { return Ok(false) };
            let details = json!({ "name": row.try_get::<_, String>("name")? });
            audit(tx, scope, "flow.delete", &format!("flow:{id}"), details).await?;
            Ok(true)
        })
        .await
    }

    async fn create_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        definition: &Value,
    ) -> DbResult<Option<FlowVersion>> {
        self.in_tenant(scope, async |tx| {
            // The flow's row lock serialises concurrent creators, so max + 1 is unique.
            let found = query_opt(
                tx,
                "SELECT 1 FROM durable.flows WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
                &[&scope.workspace, &flow],
            )
            .await?;
            if found.is_none() {
                return Ok(None);
            }
            let row = query_one(
                tx,
                concat!(
                    "INSERT INTO durable.flow_versions (workspace_id, flow_id, version, definition)
                     SELECT $1, $2, coalesce(max(version), 0) + 1, $3
                     FROM durable.flow_versions WHERE workspace_id = $1 AND flow_id = $2
                     RETURNING ",
                    version_cols!()
                ),
                &[&scope.workspace, &flow, definition],
            )
            .await?;
            let created = flow_version(&row)?;
            audit_version(tx, scope, "flow_version.create", &created).await?;
            Ok(Some(created))
        })
        .await
    }

    async fn list_flow_versions(&self, scope: Scope, flow: Uuid) -> DbResult<Vec<FlowVersion>> {
        self.in_tenant(scope, async |tx| {
            let rows = query(
                tx,
                concat!(
                    "SELECT ",
                    version_cols!(),
                    " FROM durable.flow_versions WHERE workspace_id = $1 AND flow_id = $2
                     ORDER BY version"
                ),
                &[&scope.workspace, &flow],
            )
            .await?;
            rows.iter().map(flow_version).collect()
        })
        .await
    }

    async fn get_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> DbResult<Option<FlowVersion>> {
        self.in_tenant(scope, async |tx| {
            let row = query_opt(
                tx,
                concat!(
                    "SELECT ",
                    version_cols!(),
                    " FROM durable.flow_versions
                     WHERE workspace_id = $1 AND flow_id = $2 AND version = $3"
                ),
                &[&scope.workspace, &flow, &version],
            )
            .await?;
            row.as_ref().map(flow_version).transpose()
        })
        .await
    }

    async fn update_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
        definition: &Value,
    ) -> DbResult<Option<FlowVersion>> {
        self.in_tenant(scope, async |tx| {
            let Some(current) = lock_version(tx, scope, flow, version).await? else {
                return Ok(None);
            };
            if current.published_at.is_some() {
                return Err(published(flow, version, "cannot change"));
            }
            let row = query_one(
                tx,
                concat!(
                    "UPDATE durable.flow_versions SET definition = $4
                     WHERE workspace_id = $1 AND flow_id = $2 AND version = $3 RETURNING ",
                    version_cols!()
                ),
                &[&scope.workspace, &flow, &version, definition],
            )
            .await?;
            let updated = flow_version(&row)?;
            audit_version(tx, scope, "flow_version.update", &updated).await?;
            Ok(Some(updated))
        })
        .await
    }

    async fn publish_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> DbResult<Option<FlowVersion>> {
        self.in_tenant(scope, async |tx| {
            let Some(current) = lock_version(tx, scope, flow, version).await? else {
                return Ok(None);
            };
            if current.published_at.is_some() {
                return Ok(Some(current));
            }
            let row = query_one(
                tx,
                concat!(
                    "UPDATE durable.flow_versions SET published_at = now()
                     WHERE workspace_id = $1 AND flow_id = $2 AND version = $3 RETURNING ",
                    version_cols!()
                ),
                &[&scope.workspace, &flow, &version],
            )
            .await?;
            let published = flow_version(&row)?;
            audit_version(tx, scope, "flow_version.publish", &published).await?;
            Ok(Some(published))
        })
        .await
    }

    async fn delete_flow_version(&self, scope: Scope, flow: Uuid, version: i32) -> DbResult<bool> {
        self.in_tenant(scope, async |tx| {
            let Some(current) = lock_version(tx, scope, flow, version).await? else {
                return Ok(false);
            };
            if current.published_at.is_some() {
                return Err(published(flow, version, "cannot be deleted"));
            }
            execute(
                tx,
                "DELETE FROM durable.flow_versions
                 WHERE workspace_id = $1 AND flow_id = $2 AND version = $3",
                &[&scope.workspace, &flow, &version],
            )
            .await?;
            audit_version(tx, scope, "flow_version.delete", &current).await?;
            Ok(true)
        })
        .await
    }

    async fn create_hook(
        &self,
        scope: Scope,
        workflow_name: &str,
        scheme: HookScheme,
        secrets: &[String],
    ) -> DbResult<Hook> {
        self.in_tenant(scope, async |tx| {
            // The id is the secret part of the intake URL: fully random (v4), unlike the
            // time-ordered v7 ids elsewhere, which give away their creation time.
            let row = query_one(
                tx,
                concat!(
                    "INSERT INTO durable.hooks (workspace_id, id, workflow_name, scheme, secrets)
                     VALUES ($1, $2, $3, $4, $5) RETURNING ",
                    hook_cols!()
                ),
                &[
                    &scope.workspace,
                    &Uuid::new_v4(),
                    &workflow_name,
                    &scheme.as_str(),
                    &secrets,
                ],
            )
            .await?;
            let created = hook(&row)?;
            let details = json!({ "workflow_name": workflow_name, "scheme": scheme.as_str() });
            let target = format!("hook:{}", created.id);
            audit(tx, scope, "hook.create", &target, details).await?;
            Ok(created)
        })
        .await
    }

    async fn list_hooks(&self, scope: Scope) -> DbResult<Vec<Hook>> {
        self.in_tenant(scope, async |tx| {
            let rows = query(
                tx,
                concat!(
                    "SELECT ",
                    hook_cols!(),
                    " FROM durable.hooks WHERE workspace_id = $1 ORDER BY created_at, id"
                ),
                &[&scope.workspace],
            )
            .await?;
            rows.iter().map(hook).collect()
        })
        .await
    }

    async fn get_hook(&self, scope: Scope, id: Uuid) -> DbResult<Option<Hook>> {
        self.in_tenant(scope, async |tx| {
            let row = query_opt(
                tx,
                concat!(
                    "SELECT ",
                    hook_cols!(),
                    " FROM durable.hooks WHERE workspace_id = $1 AND id = $2"
                ),
                &[&scope.workspace, &id],
            )
            .await?;
            row.as_ref().map(hook).transpose()
        })
        .await
    }

    async fn delete_hook(&self, scope: Scope, id: Uuid) -> DbResult<bool> {
        self.in_tenant(scope, async |tx| {
            let row = query_opt(
                tx,
                "DELETE FROM durable.hooks WHERE workspace_id = $1 AND id = $2
                 RETURNING workflow_name",
                &[&scope.workspace, &id],
            )
            .await?;
            let Some(row) = row else { return Ok(false) };
            let details = json!({ "workflow_name": row.try_get::<_, String>("workflow_name")? });
            audit(tx, scope, "hook.delete", &format!("hook:{id}"), details).await?;
            Ok(true)
        })
        .await
    }

    async fn rotate_hook_secret(
        &self,
        scope: Scope,
        id: Uuid,
        secret: &str,
        keep: usize,
    ) -> DbResult<Option<Hook>> {
        let keep = i32::try_from(keep).unwrap_or(i32::MAX);
        self.in_tenant(scope, async |tx| {
            let row = query_opt(
                tx,
                concat!(
                    "UPDATE durable.hooks SET secrets = ARRAY[$3::text] || secrets[1:$4]
                     WHERE workspace_id = $1 AND id = $2 RETURNING ",
                    hook_cols!()
                ),
                &[&scope.workspace, &id, &secret, &keep],
            )
            .await?;
            let Some(row) = row else { return Ok(None) };
            let details = json!({ "kept_previous": keep });
            audit(tx, scope, "hook.rotate", &format!("hook:{id}"), details).await?;
            hook(&row).map(Some)
        })
        .await
    }

    async fn begin_idempotent(
        &self,
        scope: Scope,
        key: &str,
        request_hash: &[u8; 32],
        ttl: Duration,
    ) -> DbResult<IdempotencyBegin> {
        let ttl_micros = i64::try_from(ttl.min(MAX_TTL).as_micros()).unwrap_or(i64::MAX);
        self.in_tenant(scope, async |tx| {
            // One statement claims a new key or an expired record (by the database's clock);
            // either way it returns a row. Otherwise it has locked the live record, which
            // therefore cannot vanish before the read below.
            let claimed = query_opt(
                tx,
                "INSERT INTO durable.idempotency_keys AS i (workspace_id, key, request_hash)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (workspace_id, key) DO UPDATE
                 SET request_hash = excluded.request_hash, status_code = NULL,
                     response_body = NULL, created_at = now()
                 WHERE now() - i.created_at > $4::int8 * interval '1 microsecond'
                 RETURNING 1",
                &[
                    &scope.workspace,
                    &key,
                    &request_hash.as_slice(),
                    &ttl_micros,
                ],
            )
            .await?;
            if claimed.is_some() {
                return Ok(IdempotencyBegin::Fresh);
            }
            let row = query_one(
                tx,
                "SELECT request_hash, status_code, response_body FROM durable.idempotency_keys
                 WHERE workspace_id = $1 AND key = $2",
                &[&scope.workspace, &key],
            )
            .await?;
            earlier_request(&row, request_hash)
        })
        .await
    }

    async fn finish_idempotent(
        &self,
        scope: Scope,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> DbResult<()> {
        self.in_tenant(scope, async |tx| {
            // Only an unfinished record: a stored response is never overwritten.
            execute(
                tx,
                "UPDATE durable.idempotency_keys SET status_code = $3, response_body = $4
                 WHERE workspace_id = $1 AND key = $2 AND status_code IS NULL",
                &[&scope.workspace, &key, &i32::from(status), &body],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn abandon_idempotent(&self, scope: Scope, key: &str) -> DbResult<()> {
        self.in_tenant(scope, async |tx| {
            execute(
                tx,
                "DELETE FROM durable.idempotency_keys
                 WHERE workspace_id = $1 AND key = $2 AND status_code IS NULL",
                &[&scope.workspace, &key],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, scope: Scope, limit: u32) -> DbResult<Vec<AuditEntry>> {
        self.in_tenant(scope, async |tx| {
            // Entries of one transaction share `at`; their v7 ids keep them in order.
            let rows = query(
                tx,
                "SELECT id, at, actor_key_id, action, target, details FROM durable.audit_log
                 WHERE workspace_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
                &[&scope.workspace, &i64::from(limit)],
            )
            .await?;
            rows.iter().map(audit_entry).collect()
        })
        .await
    }
}

// --- Statements, through each connection's cache of prepared statements. ---

async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, PgError> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, PgError> {
    let statement = c.prepare_cached(sql).await?;
    c.query_opt(&statement, params).await
}

async fn query_one<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Row, PgError> {
    let statement = c.prepare_cached(sql).await?;
    c.query_one(&statement, params).await
}

async fn execute<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<u64, PgError> {
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, params).await
}

/// Writes the audit entry of a change, in the change's transaction.
async fn audit(
    tx: &Transaction<'_>,
    scope: Scope,
    action: &str,
    target: &str,
    details: Value,
) -> DbResult<()> {
    let id = Uuid::now_v7();
    let params: Params<'_> = &[
        &scope.workspace,
        &id,
        &scope.actor,
        &action,
        &target,
        &details,
    ];
    execute(tx, INSERT_AUDIT, params).await?;
    Ok(())
}

/// A version's audit entry. The definition stays out: the entry names what happened, and
/// a definition can be large.
async fn audit_version(
    tx: &Transaction<'_>,
    scope: Scope,
    action: &str,
    version: &FlowVersion,
) -> DbResult<()> {
    let target = format!("flow:{}/versions/{}", version.flow_id, version.version);
    let details = json!({ "version": version.version });
    audit(tx, scope, action, &target, details).await
}

/// A version, locked for the rest of the transaction so a concurrent publish cannot slip
/// between the check of `published_at` and the change.
async fn lock_version(
    tx: &Transaction<'_>,
    scope: Scope,
    flow: Uuid,
    version: i32,
) -> DbResult<Option<FlowVersion>> {
    let row = query_opt(
        tx,
        concat!(
            "SELECT ",
            version_cols!(),
            " FROM durable.flow_versions
             WHERE workspace_id = $1 AND flow_id = $2 AND version = $3 FOR UPDATE"
        ),
        &[&scope.workspace, &flow, &version],
    )
    .await?;
    row.as_ref().map(flow_version).transpose()
}

/// What a live idempotency record with another owner means for this request.
fn earlier_request(row: &Row, request_hash: &[u8; 32]) -> DbResult<IdempotencyBegin> {
    let stored: Vec<u8> = row.try_get("request_hash")?;
    if stored != request_hash {
        return Ok(IdempotencyBegin::Mismatch);
    }
    let Some(status) = row.try_get::<_, Option<i32>>("status_code")? else {
        return Ok(IdempotencyBegin::InProgress);
    };
    let status = u16::try_from(status)
        .map_err(|_| corrupt(format!("stored idempotent status {status} is not a status")))?;
    let body: Option<Vec<u8>> = row.try_get("response_body")?;
    Ok(IdempotencyBegin::Replay {
        status,
        body: body.unwrap_or_default(),
    })
}

// --- Errors. ---

/// `Conflict` with `message` if `err` violates the unique constraint `constraint`.
fn unique_conflict(err: PgError, constraint: &str, message: impl FnOnce() -> String) -> DbError {
    let violated = err
        .as_db_error()
        .filter(|db| *db.code() == SqlState::UNIQUE_VIOLATION)
        .and_then(|db| db.constraint());
    if violated == Some(constraint) {
        DbError::Conflict(message())
    } else {
        err.into()
    }
}

fn flow_name_conflict(err: PgError, name: &str) -> DbError {
    unique_conflict(err, "flows_workspace_id_name_key", || {
        format!("a flow named `{name}` already exists in this workspace")
    })
}

fn published(flow: Uuid, version: i32, what: &str) -> DbError {
    DbError::Immutable(format!(
        "version {version} of flow {flow} is published and {what}"
    ))
}

/// A stored value this code cannot have written.
fn corrupt(message: String) -> DbError {
    DbError::Database(durable::Error::database(message))
}

// --- Rows. ---

fn tenant(row: &Row) -> DbResult<Tenant> {
    Ok(Tenant {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        plan: row.try_get("plan")?,
        created_at: row.try_get("created_at")?,
    })
}

fn workspace(row: &Row) -> DbResult<Workspace> {
    Ok(Workspace {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn api_key(row: &Row) -> DbResult<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        token_prefix: row.try_get("token_prefix")?,
        scopes: row.try_get("scopes")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn member(row: &Row) -> DbResult<Member> {
    Ok(Member {
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        role: row.try_get("role")?,
        created_at: row.try_get("created_at")?,
    })
}

fn flow(row: &Row) -> DbResult<Flow> {
    Ok(Flow {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn flow_version(row: &Row) -> DbResult<FlowVersion> {
    Ok(FlowVersion {
        flow_id: row.try_get("flow_id")?,
        version: row.try_get("version")?,
        definition: row.try_get("definition")?,
        created_at: row.try_get("created_at")?,
        published_at: row.try_get("published_at")?,
    })
}

fn hook(row: &Row) -> DbResult<Hook> {
    let scheme: String = row.try_get("scheme")?;
    Ok(Hook {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        workflow_name: row.try_get("workflow_name")?,
        scheme: HookScheme::parse(&scheme)
            .ok_or_else(|| corrupt(format!("unknown hook scheme `{scheme}`")))?,
        created_at: row.try_get("created_at")?,
    })
}

fn audit_entry(row: &Row) -> DbResult<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor_key_id: row.try_get("actor_key_id")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        details: row.try_get("details")?,
    })
}
