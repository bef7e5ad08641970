//! A host application of Durable: a workflow of a few steps on Postgres through
//! `PgStore::connect`, and a worker in the same process. It starts its run under a fixed id,
//! so starting the application again finds the same run and finishes it.
//!
//! Environment:
//! - `DATABASE_URL` (required): `postgres://user:password@host/database`.
//! - `EFFECTS`: a file to which every execution of a step's activity appends `ran step N`;
//!   a step replayed from the history appends nothing.
//! - `HANG_AT=K`: step K's activity waits forever once it started, so that the process can
//!   be killed inside it.
//! - `LEASE_MS`, `POLL_MS`: the worker's lease and poll interval (defaults 2000 and 500).
//!
//! It prints `run <id>`, then `step N started` and `step N done` as it goes, and
//! `completed: …` at the end.

use std::io::Write;
use std::time::Duration;

use durable::prelude::*;

/// Starting the same id again returns the run already recorded under it.
const WORKFLOW_ID: &str = "host-app-order-1";
const STEPS: u32 = 4;

#[durable::activity]
async fn step(_ctx: &ActivityCtx, n: u32) -> Result<String, ActivityError> {
    record_effect(n).map_err(ActivityError::terminal)?;
    println!("step {n} started");
    if env_number("HANG_AT") == Some(u64::from(n)) {
        std::future::pending::<()>().await;
    }
    Ok(format!("result {n}"))
}

#[durable::workflow]
async fn pipeline(ctx: &WorkflowCtx, steps: u32) -> Result<Vec<String>, WorkflowError> {
    let mut results = Vec::new();
    for n in 0..steps {
        results.push(step(ctx, n).await?);
        println!("step {n} done");
    }
    Ok(results)
}

/// Appends to the `EFFECTS` file, if set: an effect outside the store, which a replayed step
/// must not repeat.
fn record_effect(n: u32) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("EFFECTS") else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "ran step {n}")
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

fn env_millis(name: &str, default: u64) -> Duration {
    Duration::from_millis(env_number(name).unwrap_or(default))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL to a postgres:// URL")?;
    // Creates the engine's schema on first use: the role needs only to own the database.
    let store = durable::PgStore::connect(&url).await?;
    let client = Client::new(store.clone());
    let handle = client.start(pipeline, STEPS).id(WORKFLOW_ID).await?;
    println!("run {}", handle.id());

    // A short lease, so that a run held by a killed process is taken over within seconds.
    let worker = durable_worker::Worker::builder(store)
        .register(pipeline)
        .lease_ttl(env_millis("LEASE_MS", 2000))
        .poll_interval(env_millis("POLL_MS", 500))
        .build();
    let shutdown = worker.shutdown_token();
    let worker = tokio::spawn(worker.run());
    let result = handle.result().await;
    shutdown.cancel();
    worker.await??;
    println!("completed: {}", result?.join(", "));
    Ok(())
}
