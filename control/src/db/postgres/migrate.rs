//! The control plane's migrations on Postgres, tracked in `durable.control_migrations` and
//! applied in one transaction under an advisory lock, after the engine's.

use durable::deadpool_postgres::Object;
use durable::tokio_postgres::Transaction;

use super::TENANT_ROLE;
use crate::{Error, Result};

/// Every migration this build knows, in order. Versions are never reused or edited.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "control_plane",
        include_str!("../../../migrations/postgres/0001_control_plane.sql"),
    ),
    (
        2,
        "hook_deliveries",
        include_str!("../../../migrations/postgres/0002_hook_deliveries.sql"),
    ),
    (
        3,
        "connectors",
        include_str!("../../../migrations/postgres/0003_connectors.sql"),
    ),
];

/// Serialises concurrent migrators across processes (not the engine's lock: the engine's
/// migrations are done by then).
const MIGRATION_LOCK: i64 = 0x6475_7261_626c_6502;

/// The schema version this build writes.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

fn db(err: durable::tokio_postgres::Error) -> Error {
    Error::Database(err.into())
}

/// Brings the control plane's schema up to date, or refuses one newer than this build.
pub(super) async fn migrate(client: &mut Object) -> Result<()> {
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    ensure_tenant_role(&tx).await?;
    let current = current_version(&tx).await?;
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql).await.map_err(|e| {
            let message = format!("control-plane migration {version} ({name}) failed");
            Error::Database(durable::Error::schema_caused_by(message, e))
        })?;
        tx.execute(
            "INSERT INTO durable.control_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(db)?;
        tracing::info!(version, name, "applied control-plane migration");
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}

async fn current_version(tx: &Transaction<'_>) -> Result<i32> {
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS durable.control_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0),
                    to_regclass('durable.tenants') IS NOT NULL
             FROM durable.control_migrations",
            &[],
        )
        .await
        .map_err(db)?;
    let (current, has_tables): (i32, bool) = (row.get(0), row.get(1));
    if current == 0 && has_tables {
        return Err(schema(
            "this database holds control-plane tables from an earlier build, which kept them \
             in the engine's migrations; they cannot be upgraded in place: export what you \
             need and start from a fresh database"
                .to_owned(),
        ));
    }
    if current > latest_version() {
        return Err(schema(format!(
            "the control plane's schema is at version {current}, newer than this build's {}; \
             upgrade durable-control before connecting to this database",
            latest_version()
        )));
    }
    Ok(current)
}

fn schema(message: String) -> Error {
    Error::Database(durable::Error::schema(message))
}

/// Makes sure the connecting role may act as [`TENANT_ROLE`]: creates the role, or grants
/// it, where the connecting role may; otherwise says what an administrator must run.
async fn ensure_tenant_role(tx: &Transaction<'_>) -> Result<()> {
    let row = tx
        .query_one(
            "SELECT r.oid IS NOT NULL,
                    coalesce(pg_has_role(current_user, r.oid, 'MEMBER'), false),
                    me.rolcreaterole OR me.rolsuper,
                    current_user::text
             FROM pg_roles me LEFT JOIN pg_roles r ON r.rolname = $1
             WHERE me.rolname = current_user",
            &[&TENANT_ROLE],
        )
        .await
        .map_err(db)?;
    let (exists, member, may_create, me): (bool, bool, bool, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if exists && member {
        return Ok(());
    }
    let quoted_me = format!("\"{}\"", me.replace('"', "\"\""));
    let create = format!("CREATE ROLE {TENANT_ROLE} NOLOGIN");
    let grant = format!("GRANT {TENANT_ROLE} TO {quoted_me}");
    if !may_create {
        let statements = if exists {
            format!("{grant};")
        } else {
            format!("{create}; {grant};")
        };
        return Err(schema(format!(
            "the control plane runs tenant requests as role {TENANT_ROLE}, so that row-level \
             security applies to them, and role {quoted_me} may not set it up; an \
             administrator must run once, as a superuser: {statements}"
        )));
    }
    if !exists {
        tx.batch_execute(&create).await.map_err(db)?;
        tracing::info!(role = TENANT_ROLE, "created the tenant role");
    }
    tx.batch_execute(&grant).await.map_err(db)?;
    Ok(())
}
