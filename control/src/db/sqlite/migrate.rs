//! The control plane's migrations on SQLite, tracked in `control_migrations` and applied in
//! one `BEGIN IMMEDIATE` transaction, after the engine's.

use durable::rusqlite::{Connection, TransactionBehavior, params};

use super::rows::now;

/// Every migration this build knows, in order. Versions are never reused or edited.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "control_plane",
        include_str!("../../../migrations/sqlite/0001_control_plane.sql"),
    ),
    (
        2,
        "hook_deliveries",
        include_str!("../../../migrations/sqlite/0002_hook_deliveries.sql"),
    ),
    (
        3,
        "connectors",
        include_str!("../../../migrations/sqlite/0003_connectors.sql"),
    ),
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

fn schema(message: String) -> durable::Error {
    durable::Error::schema(message)
}

/// Brings the control plane's schema up to date, or refuses one newer than this build.
pub(super) fn migrate(conn: &mut Connection) -> durable::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS control_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT;",
    )?;
    let current: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM control_migrations",
        [],
        |r| r.get(0),
    )?;
    let has_tables: bool = tx.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'tenants'",
        [],
        |r| r.get(0),
    )?;
    if current == 0 && has_tables {
        return Err(schema(
            "this database holds control-plane tables from an earlier build, which kept them \
             in the engine's migrations; they cannot be upgraded in place: export what you \
             need and start from a fresh database file"
                .to_owned(),
        ));
    }
    if current > latest_version() {
        return Err(schema(format!(
            "the control plane's schema is at version {current}, newer than this build's {}; \
             upgrade durable-control before opening this database",
            latest_version()
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql).map_err(|e| {
            schema(format!(
                "control-plane migration {version} ({name}) failed: {e}"
            ))
        })?;
        tx.execute(
            "INSERT INTO control_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, now()],
        )?;
        tracing::info!(version, name, "applied control-plane migration");
    }
    tx.commit()?;
    Ok(())
}
