//! Support for the integration tests: a fresh Postgres database per test, an effects
//! ledger that counts how often each activity really ran, test workflows, and worker
//! processes that tests can kill.
#![allow(missing_docs)]

pub mod conformance;
pub mod db;
pub mod ledger;
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
