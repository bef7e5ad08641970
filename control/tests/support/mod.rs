//! What the suite needs to see or change behind the rules' back, on each store.

use std::time::Duration;

use durable_tests::AnyStore;
use uuid::Uuid;

/// How many rows `table` holds, in every workspace.
pub async fn count_rows(store: &AnyStore, table: &'static str) -> i64 {
    match store {
        AnyStore::Postgres(store, _) => {
            let client = store.pool().get().await.unwrap();
            let sql = format!("SELECT count(*) FROM durable.{table}");
            client.query_one(&sql, &[]).await.unwrap().get(0)
        }
        AnyStore::Sqlite(store, _) => store
            .with_connection(move |conn| {
                let sql = format!("SELECT count(*) FROM {table}");
                Ok(conn.query_row(&sql, [], |r| r.get(0))?)
            })
            .await
            .unwrap(),
    }
}

/// Makes every idempotency record look `by` older.
pub async fn age_idempotency_records(store: &AnyStore, by: Duration) {
    let micros = i64::try_from(by.as_micros()).unwrap();
    match store {
        AnyStore::Postgres(store, _) => {
            let client = store.pool().get().await.unwrap();
            client
                .execute(
                    "UPDATE durable.idempotency_keys
                     SET created_at = created_at - $1::int8 * interval '1 microsecond'",
                    &[&micros],
                )
                .await
                .unwrap();
        }
        AnyStore::Sqlite(store, _) => store
            .with_connection(move |conn| {
                conn.execute(
                    "UPDATE idempotency_keys SET created_at = created_at - ?1",
                    [micros],
                )?;
                Ok(())
            })
            .await
            .unwrap(),
    }
}

/// Makes every record of a hook delivery look `by` older.
pub async fn age_hook_deliveries(store: &AnyStore, by: Duration) {
    let micros = i64::try_from(by.as_micros()).unwrap();
    match store {
        AnyStore::Postgres(store, _) => {
            let client = store.pool().get().await.unwrap();
            client
                .execute(
                    "UPDATE durable.hook_deliveries
                     SET received_at = received_at - $1::int8 * interval '1 microsecond'",
                    &[&micros],
                )
                .await
                .unwrap();
        }
        AnyStore::Sqlite(store, _) => store
            .with_connection(move |conn| {
                conn.execute(
                    "UPDATE hook_deliveries SET received_at = received_at - ?1",
                    [micros],
                )?;
                Ok(())
            })
            .await
            .unwrap(),
    }
}

/// Runs `statement` (written for Postgres's schema) against the audit log as a tenant
/// would on Postgres, and directly on SQLite; the error, if refused.
pub async fn try_tamper_with_audit_log(
    store: &AnyStore,
    workspace: Uuid,
    statement: &'static str,
) -> Result<(), String> {
    match store {
        AnyStore::Postgres(store, _) => {
            durable_control::postgres::query_as_tenant(store, workspace, statement)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
        AnyStore::Sqlite(store, _) => {
            let sql = statement.replace("durable.", "");
            store
                .with_connection(move |conn| Ok(conn.execute(&sql, []).map(drop)))
                .await
                .unwrap()
                .map_err(|e| e.to_string())
        }
    }
}
