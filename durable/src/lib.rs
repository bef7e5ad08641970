//! Durable execution for Rust: workflows are plain `async fn`s whose every step is
//! checkpointed (to an embedded SQLite file, or to Postgres for a pool of workers on many
//! machines), so a crashed run resumes where it stopped on any worker of the pool.
//!
//! ```rust,no_run
//! use std::time::Duration;
//! use durable::prelude::*;
//!
//! #[durable::activity(retry(max_attempts = 5, initial = "100ms", backoff = 2.0, max = "10s"))]
//! async fn charge(ctx: &ActivityCtx, amount: u64) -> Result<String, ActivityError> {
//!     // The key is the same on every retry and replay of this step: send it upstream.
//!     Ok(format!("receipt-{amount}-{}", ctx.idempotency_key()))
//! }
//!
//! #[durable::workflow]
//! async fn checkout(ctx: &WorkflowCtx, amount: u64) -> Result<String, WorkflowError> {
//!     let receipt = charge(ctx, amount).await?;          // checkpointed
//!     ctx.sleep(Duration::from_secs(60)).await?;         // a durable timer
//!     Ok(receipt)
//! }
//!
//! # async fn demo() -> anyhow::Result<()> {
//! // "sqlite://durable.db" (the default) or "postgres://user:pass@host/db"
//! let store = durable::store::connect(&durable::store::url_from_env()).await?;
//! let client = durable::Client::from_arc(store);
//! let handle = client.start(checkout, 42).id("order-42").await?;  // same id → same run
//! let receipt: String = handle.result().await?;                   // once a worker ran it
//! # Ok(()) }
//! ```
//!
//! Workers (the `durable-worker` crate) claim runs from the store and execute them. See the
//! README for the guarantees and how they are tested.
#![warn(missing_docs)]

/// A named place where fault tests crash a worker (with the `failpoints` feature, through
/// the `fail` crate); nothing otherwise. The names are listed in `docs/faults.md`.
macro_rules! fault_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name);
    };
}

mod activity;
mod client;
mod clock;
mod ctx;
mod error;
mod retry;
mod run;
pub mod runtime;
pub mod store;
mod workflow;
pub mod workflow_id;

pub use activity::{ActivityCtx, ActivityOptions};
pub use client::{Client, ForkRun, RunHandle, SendMessage, StartRun, StartedJson, WorkflowSpec};
pub use client::{ScheduleBuilder, StartSchedule};
pub use ctx::{ChildHandle, Received, WorkflowCtx};
pub use error::{ActivityError, Error, Result, WorkflowError};
pub use retry::{OnExhausted, RetryPolicy};
pub use run::{
    RunFilter, RunId, RunInfo, RunStatus, StepKind, StepRecord, StepStatus, WorkspaceId,
};
pub use store::Store;
pub use store::postgres::{GroupCommitStats, PgStore};
pub use store::schedules::{CatchUp, ScheduleInfo};
pub use store::sqlite::SqliteStore;
pub use workflow::Workflow;

/// The Postgres pool crate, whose pool [`PgStore::pool`] lends.
pub use deadpool_postgres;
/// The SQLite crate, for the SQL of transactional steps on the embedded store.
pub use rusqlite;
/// The Postgres client crate, for the SQL of transactional steps.
pub use tokio_postgres;

/// Turns an `async fn(&WorkflowCtx, Input) -> Result<Output, WorkflowError>` into a durable
/// workflow: a unit struct of the same name implementing [`Workflow`].
///
/// Options: `#[durable::workflow(name = "checkout", version = 2, max_attempts = 5)]`, where
/// `max_attempts` is how many claims in a row without progress park the run. The body may
/// not call `SystemTime::now`, `Instant::now`, `rand`, `tokio::spawn`, `thread::spawn` or
/// `tokio::time::sleep`: they are not recorded, so a replay would diverge; the error names
/// the `ctx` method to use instead.
///
/// The struct takes the function's name, in the value namespace too: a `let` binding of the
/// same name in its scope (`let checkout = …`) is read as a pattern of that struct and does
/// not compile. Name the binding differently.
pub use durable_macros::workflow;

/// Turns an `async fn(&ActivityCtx, args…) -> Result<T, ActivityError>` into an activity,
/// called from workflows as `name(ctx, args…).await` with `ctx: &WorkflowCtx`.
///
/// Options: `#[durable::activity(name = "charge", retry(max_attempts = 5, initial = "100ms",
/// backoff = 2.0, max = "10s", max_duration = "5m", jitter = 0.1,
/// non_retryable = ["card_declined"], on_exhausted = "pause"))]`. Arguments are cloned for
/// each attempt.
pub use durable_macros::activity;

/// The names most workflow code needs.
pub mod prelude {
    pub use crate::{
        ActivityCtx, ActivityError, Client, RetryPolicy, RunId, RunStatus, Workflow, WorkflowCtx,
        WorkflowError,
    };
}

/// Items used by macro-generated code. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::{ActivityOptions, OnExhausted, RetryPolicy};
    pub use futures::future::BoxFuture;
    pub use std::time::Duration;
}
