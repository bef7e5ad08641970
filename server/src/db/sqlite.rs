//! [`ControlStore`] on the embedded SQLite store: the control plane's tables live in the same
//! file as the runs, and every statement runs on the store's one database thread through
//! [`SqliteStore::with_connection`].
//!
//! SQLite has no row-level security, so the `workspace_id = ?` of every scoped statement is
//! the only wall between workspaces on this store. Values follow the store's conventions:
//! ids are lowercase hyphenated UUID text, JSON (and the arrays of scopes and secrets) is
//! text, and times are integer microseconds since the Unix epoch, from the machine's clock.
//!
//! Every method is one transaction. A change takes the write lock before it reads anything
//! (`BEGIN IMMEDIATE`), so what it reads (the highest version number, whether a version is
//! published, an idempotency record) cannot change before it writes, even from another
//! process on the same file.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use durable::SqliteStore;
use durable::rusqlite::{
    self, Connection, Params, Row, Transaction, TransactionBehavior, ffi, params,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    ApiKey, AuditEntry, ControlStore, DbError, DbResult, Flow, FlowPatch, FlowVersion, Hook,
    HookScheme, HookWithSecrets, IdempotencyBegin, KeyGrant, Member, NewApiKey, Scope, Tenant,
    Workspace,
};

/// [`ControlStore`] on a [`SqliteStore`]. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SqliteControl {
    store: SqliteStore,
}

impl SqliteControl {
    /// The control plane on `store`'s database (the store's migrations create its tables).
    pub fn new(store: &SqliteStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// Runs `job` on the database thread. `with_connection` carries only `durable::Error`,
    /// so the job's own outcome, which may be a refusal, travels inside its value.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Job<T> + Send + 'static,
    ) -> DbResult<T> {
        let outcome = self
            .store
            .with_connection(move |conn| Ok(job(conn)))
            .await?;
        outcome.map_err(|Stop(err)| err)
    }

    /// Runs `body` in a read transaction, so that it sees one snapshot.
    async fn read<T: Send + 'static>(
        &self,
        body: impl FnOnce(&Transaction<'_>) -> Job<T> + Send + 'static,
    ) -> DbResult<T> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            // Nothing to keep: dropping the transaction ends it.
            body(&tx)
        })
        .await
    }

    /// Runs `body` in a write transaction, with the clock (µs) read once the write lock is
    /// held, so that writes are stamped in the order they commit. An error or a refusal
    /// from `body` rolls everything back, its audit entry included.
    async fn write<T: Send + 'static>(
        &self,
        body: impl FnOnce(&Transaction<'_>, i64) -> Job<T> + Send + 'static,
    ) -> DbResult<T> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = body(&tx, now())?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

// --- Outcomes of a job on the database thread ---

/// Why a job stopped early: the database failed, or the change was refused (`Conflict`,
/// `Immutable`). Either way its transaction rolls back.
#[derive(Debug)]
struct Stop(DbError);

type Job<T> = Result<T, Stop>;

impl From<rusqlite::Error> for Stop {
    fn from(err: rusqlite::Error) -> Self {
        Stop(DbError::Database(durable::Error::from(err)))
    }
}

impl From<durable::Error> for Stop {
    fn from(err: durable::Error) -> Self {
        Stop(DbError::Database(err))
    }
}

impl From<serde_json::Error> for Stop {
    fn from(err: serde_json::Error) -> Self {
        Stop(DbError::Database(durable::Error::from(err)))
    }
}

/// A stored value that does not make sense (a bad UUID, time or enum name).
fn corrupt(what: String) -> Stop {
    Stop(DbError::Database(durable::Error::database(what)))
}

/// A request that names something that does not exist where the trait has no `None` for it.
fn invalid(what: String) -> Stop {
    Stop(DbError::Database(durable::Error::Invalid(what)))
}

/// `result`, with the violation of a UNIQUE constraint turned into `Conflict(message)`.
/// Callers use it on tables whose only UNIQUE constraint is the name in question (a clash of
/// fresh primary keys would be `SQLITE_CONSTRAINT_PRIMARYKEY`, not this).
fn or_conflict<T>(result: rusqlite::Result<T>, message: impl FnOnce() -> String) -> Job<T> {
    match result {
        Err(rusqlite::Error::SqliteFailure(err, _))
            if err.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Err(Stop(DbError::Conflict(message())))
        }
        other => Ok(other?),
    }
}

// --- Values as stored ---

/// The clock of every timestamp written here: the system clock of the machine that holds
/// the database file, in microseconds since the Unix epoch, as the core store stamps runs.
fn now() -> i64 {
    Utc::now().timestamp_micros()
}

/// A stored timestamp.
fn timestamp(us: i64) -> Job<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| corrupt(format!("timestamp {us} µs is out of range")))
}

/// A UUID as stored.
fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// A JSON value (or array) as stored.
fn json_text(value: &impl serde::Serialize) -> Job<String> {
    Ok(serde_json::to_string(value)?)
}

fn uuid_col(row: &Row<'_>, col: &str) -> Job<Uuid> {
    let text: String = row.get(col)?;
    Uuid::parse_str(&text)
        .map_err(|e| corrupt(format!("column {col} holds `{text}`, not a UUID: {e}")))
}

fn opt_uuid_col(row: &Row<'_>, col: &str) -> Job<Option<Uuid>> {
    let text: Option<String> = row.get(col)?;
    text.map(|text| {
        Uuid::parse_str(&text)
            .map_err(|e| corrupt(format!("column {col} holds `{text}`, not a UUID: {e}")))
    })
    .transpose()
}

fn time_col(row: &Row<'_>, col: &str) -> Job<DateTime<Utc>> {
    timestamp(row.get(col)?)
}

fn opt_time_col(row: &Row<'_>, col: &str) -> Job<Option<DateTime<Utc>>> {
    row.get::<_, Option<i64>>(col)?.map(timestamp).transpose()
}

fn json_col<T: DeserializeOwned>(row: &Row<'_>, col: &str) -> Job<T> {
    let text: String = row.get(col)?;
    Ok(serde_json::from_str(&text)?)
}

// --- Statements ---

/// Runs a statement that returns no rows; the number of rows it changed.
fn execute(tx: &Transaction<'_>, sql: &str, params: impl Params) -> Job<usize> {
    Ok(tx.prepare_cached(sql)?.execute(params)?)
}

/// The first row of a query, converted.
fn query_one<T>(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl Params,
    convert: impl FnOnce(&Row<'_>) -> Job<T>,
) -> Job<Option<T>> {
    let mut statement = tx.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    rows.next()?.map(convert).transpose()
}

/// Every row of a query, converted.
fn query_all<T>(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl Params,
    convert: impl Fn(&Row<'_>) -> Job<T>,
) -> Job<Vec<T>> {
    let mut statement = tx.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(convert(row)?);
    }
    Ok(out)
}

/// Writes the audit entry of a change made in `scope`, in the change's own transaction, so
/// that there is no change without its entry and no entry without its change.
fn audit(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    action: &str,
    target: String,
    details: Value,
) -> Job<()> {
    execute(
        tx,
        "INSERT INTO audit_log (workspace_id, id, at, actor_key_id, action, target, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id_text(scope.workspace),
            id_text(Uuid::now_v7()),
            now,
            scope.actor.map(id_text),
            action,
            target,
            json_text(&details)?,
        ],
    )?;
    Ok(())
}

fn flow_target(flow: Uuid) -> String {
    format!("flow:{flow}")
}

fn version_target(flow: Uuid, version: i32) -> String {
    format!("flow:{flow}/versions/{version}")
}

// --- Tenants and workspaces ---

const SELECT_WORKSPACE: &str =
    "SELECT id, tenant_id, name, created_at FROM workspaces WHERE id = ?1";

fn workspace_from_row(row: &Row<'_>) -> Job<Workspace> {
    Ok(Workspace {
        id: uuid_col(row, "id")?,
        tenant_id: uuid_col(row, "tenant_id")?,
        name: row.get("name")?,
        created_at: time_col(row, "created_at")?,
    })
}

/// Refuses a workspace of a tenant that does not exist: on this store `workspaces.tenant_id`
/// has no foreign key (SQLite cannot add one with a default), so the check is here.
fn require_tenant(tx: &Transaction<'_>, tenant: Uuid) -> Job<()> {
    let found = query_one(
        tx,
        "SELECT 1 FROM tenants WHERE id = ?1",
        params![id_text(tenant)],
        |_| Ok(()),
    )?;
    found.ok_or_else(|| invalid(format!("there is no tenant {tenant}")))
}

fn insert_tenant(tx: &Transaction<'_>, now: i64, slug: String, plan: String) -> Job<Tenant> {
    let tenant = Tenant {
        id: Uuid::now_v7(),
        slug,
        plan,
        created_at: timestamp(now)?,
    };
    let inserted = tx
        .prepare_cached("INSERT INTO tenants (id, slug, plan, created_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![id_text(tenant.id), tenant.slug, tenant.plan, now]);
    or_conflict(inserted, || {
        format!("a tenant with slug `{}` already exists", tenant.slug)
    })?;
    Ok(tenant)
}

fn insert_workspace(
    tx: &Transaction<'_>,
    now: i64,
    tenant: Uuid,
    name: String,
    actor: Option<Uuid>,
) -> Job<Workspace> {
    require_tenant(tx, tenant)?;
    let workspace = Workspace {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        name,
        created_at: timestamp(now)?,
    };
    execute(
        tx,
        "INSERT INTO workspaces (id, tenant_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id_text(workspace.id), id_text(tenant), workspace.name, now],
    )?;
    // The new workspace's first entry: who made it.
    let scope = Scope {
        workspace: workspace.id,
        actor,
    };
    let details = json!({ "name": workspace.name, "tenant_id": tenant });
    audit(
        tx,
        now,
        scope,
        "workspace.create",
        format!("workspace:{}", workspace.id),
        details,
    )?;
    Ok(workspace)
}

// --- API keys ---

const KEY_COLUMNS: &str =
    "id, workspace_id, name, token_prefix, scopes, created_by, created_at, revoked_at";

fn key_from_row(row: &Row<'_>) -> Job<ApiKey> {
    Ok(ApiKey {
        id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        name: row.get("name")?,
        token_prefix: row.get("token_prefix")?,
        scopes: json_col(row, "scopes")?,
        created_by: opt_uuid_col(row, "created_by")?,
        created_at: time_col(row, "created_at")?,
        revoked_at: opt_time_col(row, "revoked_at")?,
    })
}

fn grant_from_row(row: &Row<'_>) -> Job<KeyGrant> {
    Ok(KeyGrant {
        key_id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        tenant_id: uuid_col(row, "tenant_id")?,
        scopes: json_col(row, "scopes")?,
    })
}

fn select_key(tx: &Transaction<'_>, scope: Scope, id: Uuid) -> Job<Option<ApiKey>> {
    query_one(
        tx,
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = ?1 AND id = ?2"),
        params![id_text(scope.workspace), id_text(id)],
        key_from_row,
    )
}

fn insert_key(tx: &Transaction<'_>, now: i64, scope: Scope, new: NewApiKey) -> Job<ApiKey> {
    let key = ApiKey {
        id: Uuid::now_v7(),
        workspace_id: scope.workspace,
        name: new.name,
        token_prefix: new.token_prefix,
        scopes: new.scopes,
        created_by: scope.actor,
        created_at: timestamp(now)?,
        revoked_at: None,
    };
    execute(
        tx,
        "INSERT INTO api_keys
             (workspace_id, id, name, token_hash, token_prefix, scopes, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id_text(scope.workspace),
            id_text(key.id),
            key.name,
            &new.token_hash[..],
            key.token_prefix,
            json_text(&key.scopes)?,
            scope.actor.map(id_text),
            now,
        ],
    )?;
    // The prefix is what listings show anyway; the hash stays out of the log.
    let details = json!({
        "name": key.name,
        "token_prefix": key.token_prefix,
        "scopes": key.scopes,
    });
    audit(
        tx,
        now,
        scope,
        "api_key.create",
        format!("api_key:{}", key.id),
        details,
    )?;
    Ok(key)
}

fn revoke_key(tx: &Transaction<'_>, now: i64, scope: Scope, id: Uuid) -> Job<Option<ApiKey>> {
    // Only an unrevoked key changes, so a second revocation keeps the first time (the
    // `coalesce(revoked_at, now)` of the trait) and is not logged as a change.
    let revoked = execute(
        tx,
        "UPDATE api_keys SET revoked_at = ?3
         WHERE workspace_id = ?1 AND id = ?2 AND revoked_at IS NULL",
        params![id_text(scope.workspace), id_text(id), now],
    )?;
    if revoked == 1 {
        let details = json!({ "revoked_at": timestamp(now)? });
        audit(
            tx,
            now,
            scope,
            "api_key.revoke",
            format!("api_key:{id}"),
            details,
        )?;
    }
    select_key(tx, scope, id)
}

// --- Members ---

const MEMBER_QUERY: &str = "
SELECT m.user_id, u.email, m.role, m.created_at
FROM workspace_members m JOIN users u ON u.id = m.user_id
WHERE m.workspace_id = ?1";

fn member_from_row(row: &Row<'_>) -> Job<Member> {
    Ok(Member {
        user_id: uuid_col(row, "user_id")?,
        email: row.get("email")?,
        role: row.get("role")?,
        created_at: time_col(row, "created_at")?,
    })
}

/// The id of the user with `email`, created if there is none.
fn user_id(tx: &Transaction<'_>, now: i64, email: &str) -> Job<Uuid> {
    // Skips only a taken email; any other failure still fails.
    execute(
        tx,
        "INSERT INTO users (id, email, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (email) DO NOTHING",
        params![id_text(Uuid::now_v7()), email, now],
    )?;
    let found = query_one(
        tx,
        "SELECT id FROM users WHERE email = ?1",
        params![email],
        |row| uuid_col(row, "id"),
    )?;
    // The insert skips only an existing user, and the write lock is held.
    found.ok_or_else(|| corrupt(format!("could not create or find the user `{email}`")))
}

fn upsert_member(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    email: &str,
    role: &str,
) -> Job<Member> {
    let user = user_id(tx, now, email)?;
    execute(
        tx,
        "INSERT INTO workspace_members (workspace_id, user_id, role, created_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
        params![id_text(scope.workspace), id_text(user), role, now],
    )?;
    audit(
        tx,
        now,
        scope,
        "member.put",
        format!("user:{user}"),
        json!({ "email": email, "role": role }),
    )?;
    let member = query_one(
        tx,
        &format!("{MEMBER_QUERY} AND m.user_id = ?2"),
        params![id_text(scope.workspace), id_text(user)],
        member_from_row,
    )?;
    member.ok_or_else(|| corrupt(format!("member {user} vanished while being written")))
}

fn delete_member(tx: &Transaction<'_>, now: i64, scope: Scope, user: Uuid) -> Job<bool> {
    let removed = execute(
        tx,
        "DELETE FROM workspace_members WHERE workspace_id = ?1 AND user_id = ?2",
        params![id_text(scope.workspace), id_text(user)],
    )?;
    if removed == 0 {
        return Ok(false);
    }
    // The user row stays: it may belong to other workspaces.
    audit(
        tx,
        now,
        scope,
        "member.remove",
        format!("user:{user}"),
        json!({}),
    )?;
    Ok(true)
}

// --- Flows ---

const FLOW_COLUMNS: &str = "id, workspace_id, name, description, created_at, updated_at";

fn flow_from_row(row: &Row<'_>) -> Job<Flow> {
    Ok(Flow {
        id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

fn select_flow(tx: &Transaction<'_>, scope: Scope, id: Uuid) -> Job<Option<Flow>> {
    query_one(
        tx,
        &format!("SELECT {FLOW_COLUMNS} FROM flows WHERE workspace_id = ?1 AND id = ?2"),
        params![id_text(scope.workspace), id_text(id)],
        flow_from_row,
    )
}

fn name_taken(name: &str) -> String {
    format!("a flow named `{name}` already exists in this workspace")
}

fn insert_flow(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    name: String,
    description: String,
) -> Job<Flow> {
    let flow = Flow {
        id: Uuid::now_v7(),
        workspace_id: scope.workspace,
        name,
        description,
        created_at: timestamp(now)?,
        updated_at: timestamp(now)?,
    };
    let inserted = tx
        .prepare_cached(
            "INSERT INTO flows (workspace_id, id, name, description, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?
        .execute(params![
            id_text(scope.workspace),
            id_text(flow.id),
            flow.name,
            flow.description,
            now,
        ]);
    or_conflict(inserted, || name_taken(&flow.name))?;
    let details = json!({ "name": flow.name, "description": flow.description });
    audit(tx, now, scope, "flow.create", flow_target(flow.id), details)?;
    Ok(flow)
}

/// The fields a patch sets, for the audit entry.
fn patch_details(patch: &FlowPatch) -> Value {
    let mut details = Map::new();
    if let Some(name) = &patch.name {
        details.insert("name".into(), name.clone().into());
    }
    if let Some(description) = &patch.description {
        details.insert("description".into(), description.clone().into());
    }
    Value::Object(details)
}

fn patch_flow(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    id: Uuid,
    patch: FlowPatch,
) -> Job<Option<Flow>> {
    let updated = tx
        .prepare_cached(
            "UPDATE flows SET name = coalesce(?3, name),
                              description = coalesce(?4, description),
                              updated_at = ?5
             WHERE workspace_id = ?1 AND id = ?2",
        )?
        .execute(params![
            id_text(scope.workspace),
            id_text(id),
            patch.name,
            patch.description,
            now,
        ]);
    let updated = or_conflict(updated, || name_taken(patch.name.as_deref().unwrap_or("")))?;
    if updated == 0 {
        return Ok(None);
    }
    audit(
        tx,
        now,
        scope,
        "flow.update",
        flow_target(id),
        patch_details(&patch),
    )?;
    select_flow(tx, scope, id)
}

fn delete_flow_row(tx: &Transaction<'_>, now: i64, scope: Scope, id: Uuid) -> Job<bool> {
    let Some(flow) = select_flow(tx, scope, id)? else {
        return Ok(false);
    };
    // Explicitly rather than by the cascade, which needs `foreign_keys` on this connection.
    let (workspace, flow_id) = (id_text(scope.workspace), id_text(id));
    execute(
        tx,
        "DELETE FROM flow_versions WHERE workspace_id = ?1 AND flow_id = ?2",
        params![workspace, flow_id],
    )?;
    execute(
        tx,
        "DELETE FROM flows WHERE workspace_id = ?1 AND id = ?2",
        params![workspace, flow_id],
    )?;
    let details = json!({ "name": flow.name });
    audit(tx, now, scope, "flow.delete", flow_target(id), details)?;
    Ok(true)
}

// --- Flow versions ---

const VERSION_QUERY: &str = "
SELECT flow_id, version, definition, created_at, published_at FROM flow_versions
WHERE workspace_id = ?1 AND flow_id = ?2";

fn version_from_row(row: &Row<'_>) -> Job<FlowVersion> {
    Ok(FlowVersion {
        flow_id: uuid_col(row, "flow_id")?,
        version: row.get("version")?,
        definition: json_col(row, "definition")?,
        created_at: time_col(row, "created_at")?,
        published_at: opt_time_col(row, "published_at")?,
    })
}

fn select_version(
    tx: &Transaction<'_>,
    scope: Scope,
    flow: Uuid,
    version: i32,
) -> Job<Option<FlowVersion>> {
    query_one(
        tx,
        &format!("{VERSION_QUERY} AND version = ?3"),
        params![id_text(scope.workspace), id_text(flow), version],
        version_from_row,
    )
}

/// Refuses to change a published version.
fn require_draft(version: &FlowVersion) -> Job<()> {
    match version.published_at {
        None => Ok(()),
        Some(_) => Err(Stop(DbError::Immutable(format!(
            "version {} of flow {} is published and cannot change",
            version.version, version.flow_id
        )))),
    }
}

fn insert_version(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    flow: Uuid,
    definition: Value,
) -> Job<Option<FlowVersion>> {
    if select_flow(tx, scope, flow)?.is_none() {
        return Ok(None);
    }
    // Safe from a concurrent create: the write lock is held since the transaction began.
    let next = tx
        .prepare_cached(
            "SELECT coalesce(max(version), 0) + 1 FROM flow_versions
             WHERE workspace_id = ?1 AND flow_id = ?2",
        )?
        .query_row(params![id_text(scope.workspace), id_text(flow)], |row| {
            row.get::<_, i32>(0)
        })?;
    execute(
        tx,
        "INSERT INTO flow_versions (workspace_id, flow_id, version, definition, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            id_text(scope.workspace),
            id_text(flow),
            next,
            json_text(&definition)?,
            now,
        ],
    )?;
    let target = version_target(flow, next);
    let details = json!({ "definition": definition });
    audit(tx, now, scope, "flow_version.create", target, details)?;
    Ok(Some(FlowVersion {
        flow_id: flow,
        version: next,
        definition,
        created_at: timestamp(now)?,
        published_at: None,
    }))
}

fn replace_definition(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    (flow, version): (Uuid, i32),
    definition: Value,
) -> Job<Option<FlowVersion>> {
    let Some(current) = select_version(tx, scope, flow, version)? else {
        return Ok(None);
    };
    require_draft(&current)?;
    execute(
        tx,
        "UPDATE flow_versions SET definition = ?4
         WHERE workspace_id = ?1 AND flow_id = ?2 AND version = ?3",
        params![
            id_text(scope.workspace),
            id_text(flow),
            version,
            json_text(&definition)?,
        ],
    )?;
    let target = version_target(flow, version);
    let details = json!({ "definition": definition });
    audit(tx, now, scope, "flow_version.update", target, details)?;
    Ok(Some(FlowVersion {
        definition,
        ..current
    }))
}

fn publish_version(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    flow: Uuid,
    version: i32,
) -> Job<Option<FlowVersion>> {
    let Some(current) = select_version(tx, scope, flow, version)? else {
        return Ok(None);
    };
    // Publishing twice changes nothing, so it is not logged either.
    if current.published_at.is_some() {
        return Ok(Some(current));
    }
    execute(
        tx,
        "UPDATE flow_versions SET published_at = ?4
         WHERE workspace_id = ?1 AND flow_id = ?2 AND version = ?3",
        params![id_text(scope.workspace), id_text(flow), version, now],
    )?;
    let published_at = timestamp(now)?;
    let target = version_target(flow, version);
    let details = json!({ "published_at": published_at });
    audit(tx, now, scope, "flow_version.publish", target, details)?;
    Ok(Some(FlowVersion {
        published_at: Some(published_at),
        ..current
    }))
}

fn delete_draft(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    flow: Uuid,
    version: i32,
) -> Job<bool> {
    let Some(current) = select_version(tx, scope, flow, version)? else {
        return Ok(false);
    };
    require_draft(&current)?;
    execute(
        tx,
        "DELETE FROM flow_versions WHERE workspace_id = ?1 AND flow_id = ?2 AND version = ?3",
        params![id_text(scope.workspace), id_text(flow), version],
    )?;
    let target = version_target(flow, version);
    audit(tx, now, scope, "flow_version.delete", target, json!({}))?;
    Ok(true)
}

// --- Hooks ---

const HOOK_COLUMNS: &str = "id, workspace_id, workflow_name, scheme, created_at";

fn hook_from_row(row: &Row<'_>) -> Job<Hook> {
    let scheme: String = row.get("scheme")?;
    Ok(Hook {
        id: uuid_col(row, "id")?,
        workspace_id: uuid_col(row, "workspace_id")?,
        workflow_name: row.get("workflow_name")?,
        scheme: HookScheme::parse(&scheme)
            .ok_or_else(|| corrupt(format!("unknown webhook scheme `{scheme}`")))?,
        created_at: time_col(row, "created_at")?,
    })
}

fn hook_with_secrets_from_row(row: &Row<'_>) -> Job<HookWithSecrets> {
    Ok(HookWithSecrets {
        hook: hook_from_row(row)?,
        secrets: json_col(row, "secrets")?,
    })
}

fn insert_hook(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    (workflow_name, scheme): (String, HookScheme),
    secrets: Vec<String>,
) -> Job<Hook> {
    let hook = Hook {
        // Random, not time-ordered: the id is the unguessable part of the intake URL.
        id: Uuid::new_v4(),
        workspace_id: scope.workspace,
        workflow_name,
        scheme,
        created_at: timestamp(now)?,
    };
    execute(
        tx,
        "INSERT INTO hooks (workspace_id, id, workflow_name, scheme, secrets, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id_text(scope.workspace),
            id_text(hook.id),
            hook.workflow_name,
            scheme.as_str(),
            json_text(&secrets)?,
            now,
        ],
    )?;
    // Never the secrets.
    let details = json!({ "workflow_name": hook.workflow_name, "scheme": scheme.as_str() });
    audit(
        tx,
        now,
        scope,
        "hook.create",
        format!("hook:{}", hook.id),
        details,
    )?;
    Ok(hook)
}

fn delete_hook_row(tx: &Transaction<'_>, now: i64, scope: Scope, id: Uuid) -> Job<bool> {
    let deleted = execute(
        tx,
        "DELETE FROM hooks WHERE workspace_id = ?1 AND id = ?2",
        params![id_text(scope.workspace), id_text(id)],
    )?;
    if deleted == 0 {
        return Ok(false);
    }
    audit(
        tx,
        now,
        scope,
        "hook.delete",
        format!("hook:{id}"),
        json!({}),
    )?;
    Ok(true)
}

/// Puts the new secret first and keeps the `keep` newest current ones after it.
fn rotate_hook_row(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    id: Uuid,
    (secret, keep): (&str, usize),
) -> Job<Option<Hook>> {
    let current = query_one(
        tx,
        "SELECT secrets FROM hooks WHERE workspace_id = ?1 AND id = ?2",
        params![id_text(scope.workspace), id_text(id)],
        |row| Ok(row.get::<_, String>(0)?),
    )?;
    let Some(current) = current else {
        return Ok(None);
    };
    let current: Vec<String> = serde_json::from_str(&current)?;
    let secrets: Vec<&str> = std::iter::once(secret)
        .chain(current.iter().map(String::as_str).take(keep))
        .collect();
    execute(
        tx,
        "UPDATE hooks SET secrets = ?3 WHERE workspace_id = ?1 AND id = ?2",
        params![
            id_text(scope.workspace),
            id_text(id),
            serde_json::to_string(&secrets)?
        ],
    )?;
    let details = json!({ "kept_previous": secrets.len() - 1 });
    audit(tx, now, scope, "hook.rotate", format!("hook:{id}"), details)?;
    query_one(
        tx,
        &format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE workspace_id = ?1 AND id = ?2"),
        params![id_text(scope.workspace), id_text(id)],
        hook_from_row,
    )
}

// --- Idempotency keys ---

/// An idempotency record left by an earlier request with the same key.
struct IdempotencyRecord {
    request_hash: Vec<u8>,
    status: Option<i64>,
    body: Option<Vec<u8>>,
    created_at: i64,
}

impl IdempotencyRecord {
    fn from_row(row: &Row<'_>) -> Job<Self> {
        Ok(Self {
            request_hash: row.get("request_hash")?,
            status: row.get("status_code")?,
            body: row.get("response_body")?,
            created_at: row.get("created_at")?,
        })
    }

    /// A record whose age has reached `ttl` counts as absent (so a `ttl` of zero never
    /// replays or blocks anything).
    fn expired(&self, now: i64, ttl: Duration) -> bool {
        let ttl = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        now.saturating_sub(self.created_at) >= ttl
    }

    /// What the record means for a live request that hashes to `request_hash`.
    fn outcome(self, request_hash: &[u8]) -> Job<IdempotencyBegin> {
        if self.request_hash != request_hash {
            return Ok(IdempotencyBegin::Mismatch);
        }
        let Some(status) = self.status else {
            return Ok(IdempotencyBegin::InProgress);
        };
        let status = u16::try_from(status)
            .map_err(|_| corrupt(format!("stored status code {status} is out of range")))?;
        Ok(IdempotencyBegin::Replay {
            status,
            body: self.body.unwrap_or_default(),
        })
    }
}

fn claim_key(
    tx: &Transaction<'_>,
    now: i64,
    scope: Scope,
    (key, request_hash): (&str, &[u8]),
    ttl: Duration,
) -> Job<IdempotencyBegin> {
    let workspace = id_text(scope.workspace);
    let inserted = execute(
        tx,
        "INSERT INTO idempotency_keys (workspace_id, key, request_hash, created_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (workspace_id, key) DO NOTHING",
        params![workspace, key, request_hash, now],
    )?;
    if inserted == 1 {
        return Ok(IdempotencyBegin::Fresh);
    }
    let record = query_one(
        tx,
        "SELECT request_hash, status_code, response_body, created_at FROM idempotency_keys
         WHERE workspace_id = ?1 AND key = ?2",
        params![workspace, key],
        IdempotencyRecord::from_row,
    )?;
    // The insert skips only an existing record, and the write lock is held.
    let record = record.ok_or_else(|| corrupt(format!("idempotency key `{key}` vanished")))?;
    if !record.expired(now, ttl) {
        return record.outcome(request_hash);
    }
    // An expired record is replaced in place: this request owns the key from now on.
    execute(
        tx,
        "UPDATE idempotency_keys
         SET request_hash = ?3, status_code = NULL, response_body = NULL, created_at = ?4
         WHERE workspace_id = ?1 AND key = ?2",
        params![workspace, key, request_hash, now],
    )?;
    Ok(IdempotencyBegin::Fresh)
}

// --- Audit log ---

fn audit_from_row(row: &Row<'_>) -> Job<AuditEntry> {
    Ok(AuditEntry {
        id: uuid_col(row, "id")?,
        at: time_col(row, "at")?,
        actor_key_id: opt_uuid_col(row, "actor_key_id")?,
        action: row.get("action")?,
        target: row.get("target")?,
        details: json_col(row, "details")?,
    })
}

#[async_trait]
impl ControlStore for SqliteControl {
    async fn create_tenant(&self, slug: &str, plan: &str) -> DbResult<Tenant> {
        let (slug, plan) = (slug.to_owned(), plan.to_owned());
        self.write(move |tx, now| insert_tenant(tx, now, slug, plan))
            .await
    }

    async fn create_workspace(
        &self,
        tenant: Uuid,
        name: &str,
        actor: Option<Uuid>,
    ) -> DbResult<Workspace> {
        let name = name.to_owned();
        self.write(move |tx, now| insert_workspace(tx, now, tenant, name, actor))
            .await
    }

    async fn authenticate(&self, token_hash: &[u8; 32]) -> DbResult<Option<KeyGrant>> {
        let hash = *token_hash;
        self.read(move |tx| {
            query_one(
                tx,
                "SELECT k.id, k.workspace_id, w.tenant_id, k.scopes
                 FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
                 WHERE k.token_hash = ?1 AND k.revoked_at IS NULL",
                params![&hash[..]],
                grant_from_row,
            )
        })
        .await
    }

    async fn hook_for_intake(&self, hook: Uuid) -> DbResult<Option<HookWithSecrets>> {
        self.read(move |tx| {
            query_one(
                tx,
                &format!("SELECT {HOOK_COLUMNS}, secrets FROM hooks WHERE id = ?1"),
                params![id_text(hook)],
                hook_with_secrets_from_row,
            )
        })
        .await
    }

    async fn workspace(&self, scope: Scope) -> DbResult<Workspace> {
        self.read(move |tx| {
            let found = query_one(
                tx,
                SELECT_WORKSPACE,
                params![id_text(scope.workspace)],
                workspace_from_row,
            )?;
            found.ok_or_else(|| invalid(format!("there is no workspace {}", scope.workspace)))
        })
        .await
    }

    async fn create_api_key(&self, scope: Scope, key: NewApiKey) -> DbResult<ApiKey> {
        self.write(move |tx, now| insert_key(tx, now, scope, key))
            .await
    }

    async fn list_api_keys(&self, scope: Scope) -> DbResult<Vec<ApiKey>> {
        self.read(move |tx| {
            query_all(
                tx,
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = ?1
                     ORDER BY created_at, id"
                ),
                params![id_text(scope.workspace)],
                key_from_row,
            )
        })
        .await
    }

    async fn revoke_api_key(&self, scope: Scope, id: Uuid) -> DbResult<Option<ApiKey>> {
        self.write(move |tx, now| revoke_key(tx, now, scope, id))
            .await
    }

    async fn put_member(&self, scope: Scope, email: &str, role: &str) -> DbResult<Member> {
        let (email, role) = (email.to_owned(), role.to_owned());
        self.write(move |tx, now| upsert_member(tx, now, scope, &email, &role))
            .await
    }

    async fn list_members(&self, scope: Scope) -> DbResult<Vec<Member>> {
        self.read(move |tx| {
            query_all(
                tx,
                &format!("{MEMBER_QUERY} ORDER BY m.created_at, m.user_id"),
                params![id_text(scope.workspace)],
                member_from_row,
            )
        })
        .await
    }

    async fn remove_member(&self, scope: Scope, user: Uuid) -> DbResult<bool> {
        self.write(move |tx, now| delete_member(tx, now, scope, user))
            .await
    }

    async fn create_flow(&self, scope: Scope, name: &str, description: &str) -> DbResult<Flow> {
        let (name, description) = (name.to_owned(), description.to_owned());
        self.write(move |tx, now| insert_flow(tx, now, scope, name, description))
            .await
    }

    async fn list_flows(&self, scope: Scope) -> DbResult<Vec<Flow>> {
        self.read(move |tx| {
            query_all(
                tx,
                &format!(
                    "SELECT {FLOW_COLUMNS} FROM flows WHERE workspace_id = ?1
                     ORDER BY created_at, id"
                ),
                params![id_text(scope.workspace)],
                flow_from_row,
            )
        })
        .await
    }

    async fn get_flow(&self, scope: Scope, id: Uuid) -> DbResult<Option<Flow>> {
        self.read(move |tx| select_flow(tx, scope, id)).await
    }

    async fn update_flow(
        &self,
        scope: Scope,
        id: Uuid,
        patch: FlowPatch,
    ) -> DbResult<Option<Flow>> {
        self.write(move |tx, now| patch_flow(tx, now, scope, id, patch))
            .await
    }

    async fn delete_flow(&self, scope: Scope, id: Uuid) -> DbResult<bool> {
        self.write(move |tx, now| delete_flow_row(tx, now, scope, id))
            .await
    }

    async fn create_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        definition: &Value,
    ) -> DbResult<Option<FlowVersion>> {
        let definition = definition.clone();
        self.write(move |tx, now| insert_version(tx, now, scope, flow, definition))
            .await
    }

    async fn list_flow_versions(&self, scope: Scope, flow: Uuid) -> DbResult<Vec<FlowVersion>> {
        self.read(move |tx| {
            query_all(
                tx,
                &format!("{VERSION_QUERY} ORDER BY version"),
                params![id_text(scope.workspace), id_text(flow)],
                version_from_row,
            )
        })
        .await
    }

    async fn get_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> DbResult<Option<FlowVersion>> {
        self.read(move |tx| select_version(tx, scope, flow, version))
            .await
    }

    async fn update_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
        definition: &Value,
    ) -> DbResult<Option<FlowVersion>> {
        let definition = definition.clone();
        self.write(move |tx, now| replace_definition(tx, now, scope, (flow, version), definition))
            .await
    }

    async fn publish_flow_version(
        &self,
        scope: Scope,
        flow: Uuid,
        version: i32,
    ) -> DbResult<Option<FlowVersion>> {
        self.write(move |tx, now| publish_version(tx, now, scope, flow, version))
            .await
    }

    async fn delete_flow_version(&self, scope: Scope, flow: Uuid, version: i32) -> DbResult<bool> {
        self.write(move |tx, now| delete_draft(tx, now, scope, flow, version))
            .await
    }

    async fn create_hook(
        &self,
        scope: Scope,
        workflow_name: &str,
        scheme: HookScheme,
        secrets: &[String],
    ) -> DbResult<Hook> {
        let endpoint = (workflow_name.to_owned(), scheme);
        let secrets = secrets.to_vec();
        self.write(move |tx, now| insert_hook(tx, now, scope, endpoint, secrets))
            .await
    }

    async fn list_hooks(&self, scope: Scope) -> DbResult<Vec<Hook>> {
        self.read(move |tx| {
            query_all(
                tx,
                &format!(
                    "SELECT {HOOK_COLUMNS} FROM hooks WHERE workspace_id = ?1
                     ORDER BY created_at, id"
                ),
                params![id_text(scope.workspace)],
                hook_from_row,
            )
        })
        .await
    }

    async fn get_hook(&self, scope: Scope, id: Uuid) -> DbResult<Option<Hook>> {
        self.read(move |tx| {
            query_one(
                tx,
                &format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE workspace_id = ?1 AND id = ?2"),
                params![id_text(scope.workspace), id_text(id)],
                hook_from_row,
            )
        })
        .await
    }

    async fn delete_hook(&self, scope: Scope, id: Uuid) -> DbResult<bool> {
        self.write(move |tx, now| delete_hook_row(tx, now, scope, id))
            .await
    }

    async fn rotate_hook_secret(
        &self,
        scope: Scope,
        id: Uuid,
        secret: &str,
        keep: usize,
    ) -> DbResult<Option<Hook>> {
        let secret = secret.to_owned();
        self.write(move |tx, now| rotate_hook_row(tx, now, scope, id, (&secret, keep)))
            .await
    }

    async fn begin_idempotent(
        &self,
        scope: Scope,
        key: &str,
        request_hash: &[u8; 32],
        ttl: Duration,
    ) -> DbResult<IdempotencyBegin> {
        let (key, hash) = (key.to_owned(), *request_hash);
        self.write(move |tx, now| claim_key(tx, now, scope, (&key, &hash), ttl))
            .await
    }

    async fn finish_idempotent(
        &self,
        scope: Scope,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> DbResult<()> {
        let (key, body) = (key.to_owned(), body.to_vec());
        self.write(move |tx, _| {
            // Only an unfinished record takes a response: a stored one is never rewritten.
            execute(
                tx,
                "UPDATE idempotency_keys SET status_code = ?3, response_body = ?4
                 WHERE workspace_id = ?1 AND key = ?2 AND status_code IS NULL",
                params![id_text(scope.workspace), key, status, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn abandon_idempotent(&self, scope: Scope, key: &str) -> DbResult<()> {
        let key = key.to_owned();
        self.write(move |tx, _| {
            // A finished record stays: its response must keep replaying.
            execute(
                tx,
                "DELETE FROM idempotency_keys
                 WHERE workspace_id = ?1 AND key = ?2 AND status_code IS NULL",
                params![id_text(scope.workspace), key],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, scope: Scope, limit: u32) -> DbResult<Vec<AuditEntry>> {
        self.read(move |tx| {
            query_all(
                tx,
                "SELECT id, at, actor_key_id, action, target, details FROM audit_log
                 WHERE workspace_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
                params![id_text(scope.workspace), i64::from(limit)],
                audit_from_row,
            )
        })
        .await
    }
}
