//! Embedded schema migrations, applied in one transaction under an advisory lock.

use deadpool_postgres::Client;

use crate::error::describe_postgres;
use crate::{Error, Result};

/// Every migration this build knows, in order. Versions are never reused or edited.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "messages_events",
        include_str!("../../../migrations/postgres/0002_messages_events.sql"),
    ),
    (
        3,
        "children_pause",
        include_str!("../../../migrations/postgres/0003_children_pause.sql"),
    ),
    (
        4,
        "fork",
        include_str!("../../../migrations/postgres/0004_fork.sql"),
    ),
    (
        5,
        "schedules",
        include_str!("../../../migrations/postgres/0005_schedules.sql"),
    ),
    (
        6,
        "reserved",
        include_str!("../../../migrations/postgres/0006_reserved.sql"),
    ),
    (
        7,
        "cancel_timeout",
        include_str!("../../../migrations/postgres/0007_cancel_timeout.sql"),
    ),
    (
        8,
        "hot_checkpoints",
        include_str!("../../../migrations/postgres/0008_hot_checkpoints.sql"),
    ),
];

/// Arbitrary constant that serialises concurrent migrators across processes.
const MIGRATION_LOCK: i64 = 0x6475_7261_626c_6501;

/// The schema version this build writes.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// A hash of every migration's text: it changes whenever the schema this build writes does,
/// even where a migration was edited in place (test templates are named after it).
pub fn schema_fingerprint() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (version, name, sql) in MIGRATIONS {
        (version, name, sql).hash(&mut hasher);
    }
    hasher.finish()
}

/// Brings the schema up to date, or refuses a schema newer than this build.
pub async fn migrate(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS durable;
         CREATE TABLE IF NOT EXISTS durable.schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM durable.schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    if current > latest_version() {
        return Err(Error::schema(format!(
            "the database schema is at version {current}, newer than this build's {}; \
             upgrade durable before connecting to this database",
            latest_version()
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql).await.map_err(|e| {
            let message = format!(
                "migration {version} ({name}) failed: {}",
                describe_postgres(&e)
            );
            Error::schema_caused_by(message, e)
        })?;
        tx.execute(
            "INSERT INTO durable.schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        tracing::info!(version, name, "applied migration");
    }
    tx.commit().await?;
    Ok(())
}
