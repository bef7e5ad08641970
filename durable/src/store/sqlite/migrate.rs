//! Embedded schema migrations, tracked in `schema_migrations` and applied in one
//! `BEGIN IMMEDIATE` transaction, so concurrent openers take turns and a failed migration
//! leaves the file as it was.

use rusqlite::{Connection, TransactionBehavior, params};

use super::rows;
use crate::{Error, Result};

/// Every migration this build knows, in order. Versions are never reused or edited.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "messages_events",
        include_str!("../../../migrations/sqlite/0002_messages_events.sql"),
    ),
    (
        3,
        "children_pause",
        include_str!("../../../migrations/sqlite/0003_children_pause.sql"),
    ),
    (
        4,
        "fork",
        include_str!("../../../migrations/sqlite/0004_fork.sql"),
    ),
    (
        5,
        "schedules",
        include_str!("../../../migrations/sqlite/0005_schedules.sql"),
    ),
    (
        6,
        "reserved",
        include_str!("../../../migrations/sqlite/0006_reserved.sql"),
    ),
    (
        7,
        "cancel_timeout",
        include_str!("../../../migrations/sqlite/0007_cancel_timeout.sql"),
    ),
];

/// `PRAGMA application_id` of a Durable database ("Durb"), set by the first migration.
pub(super) const APPLICATION_ID: i64 = 0x4475_7262;

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Reads the schema version without writing anything, and refuses a file that belongs to
/// another application or was written by a newer build. `at` names the database in errors.
pub(super) fn check(conn: &Connection, at: &str) -> Result<i64> {
    let application_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(Error::database(format!(
            "{at} is not a Durable/SQLite database: it is the SQLite database of another \
             application (application_id {application_id:#x}); nothing was changed"
        )));
    }
    let current = current_version(conn)?;
    if current == 0 {
        refuse_foreign_tables(conn, at)?;
    }
    refuse_newer(current, at)?;
    Ok(current)
}

/// A database with tables but no Durable schema belongs to someone else: adding tables to
/// it (or switching it to WAL) would change another application's file.
fn refuse_foreign_tables(conn: &Connection, at: &str) -> Result<()> {
    let foreign: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        [],
        |r| r.get(0),
    )?;
    if foreign {
        return Err(Error::database(format!(
            "{at} is not a Durable/SQLite database: it holds another application's tables \
             and no Durable schema; nothing was changed"
        )));
    }
    Ok(())
}

fn current_version(conn: &Connection) -> Result<i64> {
    let tracked: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get(0),
    )?;
    if !tracked {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?)
}

fn refuse_newer(current: i64, at: &str) -> Result<()> {
    if current > latest_version() {
        return Err(Error::schema(format!(
            "the database schema of {at} is at version {current}, newer than this build's {}; \
             upgrade durable before opening it (nothing was changed)",
            latest_version()
        )));
    }
    Ok(())
}

/// Brings the schema up to date, or refuses a schema newer than this build.
pub(super) fn migrate(conn: &mut Connection, at: &str) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT;",
    )?;
    // Another process may have migrated since `check` looked: decide again under the lock.
    let current = current_version(&tx)?;
    refuse_newer(current, at)?;
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql).map_err(|e| {
            Error::schema_caused_by(
                format!("migration {version} ({name}) of {at} failed: {e}"),
                e,
            )
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, rows::micros(rows::now())],
        )?;
        tracing::info!(version, name, database = at, "applied migration");
    }
    tx.commit()?;
    Ok(())
}
