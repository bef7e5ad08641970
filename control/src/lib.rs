//! Durable's control plane, without HTTP: tenants, workspaces, members, API keys, flows and
//! their versions, webhook endpoints, the connector registry, idempotency records and the
//! audit log.
//!
//! It lives beside the engine's tables, on the same database, and brings its own
//! migrations: an application that uses only `durable` never sees these tables.
//!
//! ```rust,no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use durable_control::{Control, Scope};
//!
//! let store = durable::SqliteStore::connect("sqlite://durable.db").await?;
//! let control = Control::sqlite(&store).await?;          // migrates the control plane
//! let tenant = control.create_tenant("acme", "free").await?;
//! let workspace = control.create_workspace(tenant.id, "main", None).await?;
//! let flow = control
//!     .create_flow(Scope::system(workspace.id), "triage", "label new issues")
//!     .await?;
//! # let _ = flow;
//! # Ok(())
//! # }
//! ```
//!
//! # How it is built
//!
//! Every decision — what an audit entry records, that a published version never changes,
//! the idempotency decision, who may revoke which key, the errors and their messages — is
//! written once, in the rules (`rules/`). Each store only reads and writes rows inside a
//! transaction (`db/postgres.rs`, `db/sqlite.rs`). One conformance suite runs the same
//! cases on both stores.
//!
//! Every method that takes a [`Scope`] touches that workspace's rows only, in one
//! transaction, and writes its audit entry in that same transaction. On Postgres a scoped
//! transaction also runs as role `durable_tenant` with the workspace set for the
//! transaction only, so row-level security hides every other workspace even from a
//! statement that forgets its `WHERE workspace_id = …`.
#![warn(missing_docs)]

mod audit;
mod db;
mod error;
pub mod limits;
mod model;
mod rules;

use std::sync::Arc;

pub use audit::{AuditEvent, RunAction};
pub use error::{Error, Result};
pub use model::{
    ApiKey, AuditEntry, ConnectorAction, ConnectorOwner, ConnectorSummary, ConnectorTrigger,
    ConnectorVersion, ConnectorVersionInfo, Flow, FlowPatch, FlowVersion, Hook, HookScheme,
    HookWithSecrets, InstalledConnector, KeyGrant, Member, NewApiKey, NewConnectorVersion, ROLES,
    Scope, Tenant, TriggerKind, Workspace,
};
pub use rules::hooks::{DeliveryClaim, default_dedupe_window};
pub use rules::idempotency::{IdempotencyBegin, IdempotencyRequest};

/// Postgres specifics: the row-level-security role and a diagnostic query.
pub mod postgres {
    pub use crate::db::postgres::{TENANT_ROLE, query_as_tenant};
}

use db::{Database, Tx};

/// The control plane on one store. Cloning is cheap and shares the store.
#[derive(Debug, Clone)]
pub struct Control {
    db: Arc<dyn Database>,
}

impl Control {
    /// The control plane on `store`'s Postgres database: applies its migrations (after the
    /// engine's, which `store` applied) and sets up the row-level-security role.
    ///
    /// The role `durable_tenant` is created if the connecting role may create roles;
    /// otherwise an error names the statements an administrator must run once.
    pub async fn postgres(store: &durable::PgStore) -> Result<Self> {
        let db = db::postgres::PgDatabase::open(store).await?;
        Ok(Self { db: Arc::new(db) })
    }

    /// The control plane on `store`'s SQLite database: applies its migrations.
    pub async fn sqlite(store: &durable::SqliteStore) -> Result<Self> {
        let db = db::sqlite::SqliteDatabase::open(store).await?;
        Ok(Self { db: Arc::new(db) })
    }
}

/// Runs `$body` in one transaction of `$control`'s store — the system's, or confined to a
/// [`Scope`]'s workspace — with `$tx` bound to it, and
/// commits if it returns `Ok`; an `Err` rolls back everything it did, its audit entry
/// included. A macro rather than a function taking a closure: an async closure over a
/// borrowed transaction cannot be proven `Send` for every lifetime, which servers need.
macro_rules! transaction {
    ($control:expr, $access:expr, |$tx:ident| $body:expr) => {{
        let mut $tx = $control.db.begin($crate::db::Access::from($access)).await?;
        let outcome: $crate::Result<_> = async { $body }.await;
        $crate::settle($tx, outcome).await
    }};
}
pub(crate) use transaction;

/// Commits `tx` if `outcome` is `Ok`, rolls it back otherwise.
async fn settle<T>(tx: Box<dyn Tx>, outcome: Result<T>) -> Result<T> {
    match outcome {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(err) => {
            tx.rollback().await;
            Err(err)
        }
    }
}

/// Writes the audit entry of a change made in `scope`, in the change's own transaction.
async fn record(tx: &mut dyn Tx, scope: Scope, event: AuditEvent) -> Result<()> {
    let entry = db::NewAuditEntry {
        actor: scope.actor,
        action: event.action(),
        target: event.target(),
        details: event.details(),
    };
    tx.insert_audit(scope.workspace, &entry).await
}
