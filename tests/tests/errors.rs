//! Database errors keep the driver's error as their source: a caller can downcast it and read
//! its SQLSTATE, and the message still names the server's code and message.

use std::error::Error as _;

use durable::Error;
use durable_tests::TestDb;
use tokio_postgres::error::SqlState;

/// The Postgres error behind `err`, which must be its direct source.
fn postgres_source(err: &Error) -> &tokio_postgres::Error {
    err.source()
        .and_then(|source| source.downcast_ref::<tokio_postgres::Error>())
        .unwrap_or_else(|| panic!("the tokio_postgres error is the source: {err:?}"))
}

/// Runs `sql` on a connection of the store's pool, expecting it to fail.
async fn failing(db: &TestDb, sql: &str) -> Error {
    let store = db.store().await;
    let client = store.pool().get().await.expect("a pooled connection");
    let driver = client
        .batch_execute(sql)
        .await
        .expect_err("the statement should fail");
    Error::from(driver)
}

#[tokio::test]
async fn a_rejected_statement_keeps_the_postgres_error() {
    let db = TestDb::new().await;
    let err = failing(&db, "SELEC 1").await;
    assert!(matches!(err, Error::Database { .. }), "{err:?}");
    assert_eq!(err.sqlstate(), Some("42601"));
    assert!(err.to_string().contains("42601: syntax error"), "{err}");
    let code = postgres_source(&err).code();
    assert_eq!(code, Some(&SqlState::SYNTAX_ERROR));
}

#[tokio::test]
async fn a_data_exception_is_refused_and_keeps_the_postgres_error() {
    let db = TestDb::new().await;
    let err = failing(&db, "SELECT 1 / 0").await;
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert_eq!(err.sqlstate(), Some("22012"));
    assert!(err.to_string().contains("22012: division by zero"), "{err}");
    let code = postgres_source(&err).code();
    assert_eq!(code, Some(&SqlState::DIVISION_BY_ZERO));
}

#[tokio::test]
async fn a_failed_migration_keeps_its_postgres_error() {
    let db = TestDb::new().await;
    // A database with no Durable schema, but a table in the way of the first migration.
    db.client()
        .await
        .batch_execute(
            "DROP SCHEMA durable CASCADE;
             CREATE SCHEMA durable;
             CREATE TABLE durable.workspaces (squatter int);",
        )
        .await
        .unwrap();
    let err = durable::PgStore::connect(&db.url)
        .await
        .expect_err("the first migration fails");
    let Error::Schema { message, .. } = &err else {
        panic!("expected Error::Schema, got {err:?}");
    };
    assert!(
        message.contains("migration 1 (init) failed: 42P07"),
        "{message}"
    );
    assert_eq!(err.sqlstate(), Some("42P07"));
    let code = postgres_source(&err).code();
    assert_eq!(code, Some(&SqlState::DUPLICATE_TABLE));
}
