//! The `bench-worker` process: a worker pool running the crash-recovery workflow on the
//! store named by `DURABLE_BENCH_STORE_URL`, until it is killed.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use durable_worker::Worker;

use crate::target;
use crate::workloads::crash::flow::crash_run;

/// Runs the crash-recovery workflow until killed.
#[derive(Debug, Parser)]
#[command(name = "bench-worker")]
struct Args {
    /// Lease length in milliseconds.
    #[arg(long, default_value_t = 2000)]
    lease_ms: u64,
    /// Poll interval in milliseconds.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
}

/// Connects, prints `ready pid=<pid>`, and runs the pool.
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = std::env::var("DURABLE_BENCH_STORE_URL").context("DURABLE_BENCH_STORE_URL")?;
    let store = target::connect(&url).await?;
    let worker = Worker::builder_arc(store)
        .register(crash_run)
        .lease_ttl(Duration::from_millis(args.lease_ms))
        .poll_interval(Duration::from_millis(args.poll_ms))
        .build();
    println!("ready pid={}", std::process::id());
    worker.run().await?;
    Ok(())
}
