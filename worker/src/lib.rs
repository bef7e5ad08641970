//! The worker pool: claims runs from a [`durable::Store`], executes them, heartbeats their
//! leases, wakes timers, and shuts down gracefully.
//!
//! ```rust,no_run
//! # use durable::prelude::*;
//! # #[durable::workflow]
//! # async fn checkout(ctx: &WorkflowCtx, amount: u64) -> Result<u64, WorkflowError> { Ok(amount) }
//! # async fn demo() -> anyhow::Result<()> {
//! let store = durable::PgStore::connect("postgres://durable:durable@127.0.0.1/durable").await?;
//! let worker = durable_worker::Worker::builder(store).register(checkout).build();
//! let shutdown = worker.shutdown_token();
//! let running = tokio::spawn(worker.run());
//! // … later: stop claiming, let in-flight runs finish (or hand them back), then return.
//! shutdown.cancel();
//! running.await??;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod builder;
mod heartbeat;
mod pool;
mod scheduler;

pub use builder::{Worker, WorkerBuilder};
