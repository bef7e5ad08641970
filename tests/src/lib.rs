//! Support for the integration tests: a fresh Postgres database per test, an effects
//! ledger that counts how often each activity really ran, test workflows, and worker
//! processes that tests can kill.
#![allow(missing_docs)]

pub mod cancelling;
pub mod conformance;
pub mod db;
pub mod ledger;
pub mod private_pg;
pub mod process;
pub mod scheduled;
pub mod transactional;
pub mod wait;
pub mod workflows;

pub use db::TestDb;
pub use ledger::Ledger;

use std::time::Duration;

/// An in-process worker with test timings: 1 s leases, 100 ms polls.
pub fn worker(store: durable::PgStore) -> durable_worker::WorkerBuilder {
    workflows::register_all(durable_worker::Worker::builder(store))
        .lease_ttl(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(100))
}

/// An in-process worker on any store, with the same test timings.
pub fn worker_on(store: std::sync::Arc<dyn durable::Store>) -> durable_worker::WorkerBuilder {
    workflows::register_all(durable_worker::Worker::builder_arc(store))
        .lease_ttl(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(100))
}

/// Logs to the test's output (shown when it fails).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Runs `body` while an in-process worker built from `worker` runs, then stops the worker.
pub async fn while_working<T>(
    worker: durable_worker::WorkerBuilder,
    body: impl std::future::Future<Output = T>,
) -> T {
    let worker = worker.build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    let out = body.await;
    stop.cancel();
    task.await.expect("the worker task").expect("the worker");
    out
}

/// Runs `body` with a client while an in-process worker with the test timings runs on
/// `store`, then stops the worker.
pub async fn with_worker_on<F, Fut>(store: std::sync::Arc<dyn durable::Store>, body: F)
where
    F: FnOnce(durable::Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    init_tracing();
    let worker = worker_on(store.clone());
    while_working(worker, body(durable::Client::from_arc(store))).await;
}

/// What a test body returns: nothing, or a `Result` whose error fails the test.
pub trait TestOutcome {
    /// Panics on a failure.
    fn check(self);
}

impl TestOutcome for () {
    fn check(self) {}
}

impl<E: std::fmt::Debug> TestOutcome for Result<(), E> {
    fn check(self) {
        if let Err(err) = self {
            panic!("the test failed: {err:?}");
        }
    }
}

/// A store of either kind, for suites that need the concrete store (to build something
/// else on it, such as the control plane). It keeps its database while it lives: dropped
/// when the test passes, kept for inspection when it fails.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// A fresh Postgres database.
    Postgres(durable::PgStore, std::sync::Arc<TestDb>),
    /// A fresh SQLite file.
    Sqlite(
        durable::SqliteStore,
        std::sync::Arc<conformance::SqliteFile>,
    ),
}

impl AnyStore {
    /// A store on a fresh Postgres database.
    pub async fn postgres() -> Self {
        let db = TestDb::new().await;
        AnyStore::Postgres(db.store().await, std::sync::Arc::new(db))
    }

    /// A store on a fresh SQLite file.
    pub async fn sqlite() -> Self {
        let file = conformance::SqliteFile::new();
        AnyStore::Sqlite(file.store().await, std::sync::Arc::new(file))
    }

    /// The store as the engine sees it.
    pub fn runs(&self) -> std::sync::Arc<dyn durable::Store> {
        match self {
            AnyStore::Postgres(store, _) => std::sync::Arc::new(store.clone()),
            AnyStore::Sqlite(store, _) => std::sync::Arc::new(store.clone()),
        }
    }
}

/// Generates, for each named test body of the calling file, one test on a fresh Postgres
/// database (module `postgres`) and one on a fresh SQLite file (`sqlite`). The bodies take
/// an `Arc<dyn Store>`; with `any:` first, an [`AnyStore`]; with `postgres: <expr>,
/// sqlite: <expr>;` first, whatever those expressions make (a server on each store, say).
/// A body may return `()` or a `Result`, whose error fails the test. The database is
/// dropped when the test passes and kept when it fails.
#[macro_export]
macro_rules! on_both_stores {
    (any: $($name:ident),* $(,)?) => {
        $crate::on_both_stores!(postgres: $crate::AnyStore::postgres().await,
            sqlite: $crate::AnyStore::sqlite().await; $($name),*);
    };
    (postgres: $on_pg:expr, sqlite: $on_lite:expr; $($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::TestOutcome::check(super::$name($on_pg).await);
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::TestOutcome::check(super::$name($on_lite).await);
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_stores!(@each |store| ::std::sync::Arc::new(store),
            |store| ::std::sync::Arc::new(store); $($name),*);
    };
    (@each |$pg:ident| $on_pg:expr, |$lite:ident| $on_lite:expr; $($name:ident),*) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDb::new().await;
                    let $pg = db.store().await;
                    $crate::TestOutcome::check(super::$name($on_pg).await);
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let file = $crate::conformance::SqliteFile::new();
                    let $lite = file.store().await;
                    $crate::TestOutcome::check(super::$name($on_lite).await);
                }
            )*
        }
    };
}
