//! Measures what one durable step costs: a workflow of N sequential no-op activities, run by
//! one worker, one workflow at a time. Prints per-step latency (median, p99) and steps/s.
//!
//! ```text
//! cargo run --release --example step_latency                  # embedded store
//! DATABASE_URL=postgres://… cargo run --release --example step_latency -- 2000
//! ```
//! A quick look, not the benchmark harness: see `benches/` for the measured figures.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use durable::prelude::*;

/// When each activity started: the gap between two is one whole step (the activity, its
/// checkpoint, and the workflow moving on).
static STARTS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());

#[durable::activity]
async fn noop(_ctx: &ActivityCtx, i: u32) -> Result<u32, ActivityError> {
    STARTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Instant::now());
    Ok(i)
}

#[durable::workflow]
async fn steps(ctx: &WorkflowCtx, n: u32) -> Result<(), WorkflowError> {
    for i in 0..n {
        noop(ctx, i).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000)
        .max(2);
    let url = durable::store::url_from_env();
    let store = durable::store::connect(&url).await?;
    let worker = durable_worker::Worker::builder_arc(store.clone())
        .register(steps)
        .build();
    let shutdown = worker.shutdown_token();
    let worker = tokio::spawn(worker.run());

    let client = Client::from_arc(store);
    let started = Instant::now();
    client.start(steps, n).await?.result().await?;
    let elapsed = started.elapsed();
    let starts = std::mem::take(&mut *STARTS.lock().unwrap_or_else(|e| e.into_inner()));
    let mut latencies: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    shutdown.cancel();
    worker.await??;

    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "{n} steps in {elapsed:.2?}: {:.0} steps/s; per step p50 {:?}, p99 {:?}",
        f64::from(n) / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}
