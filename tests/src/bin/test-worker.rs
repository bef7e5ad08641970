//! A worker process running the test workflows, for tests that kill, stop and restart workers.
//! Configured by `DATABASE_URL`, `LEASE_MS`, `POLL_MS` and `CONCURRENCY`; stops gracefully on
//! SIGTERM. With `CRASH_AT=<fault point>:<n>` it aborts, as a SIGKILL would end it, the
//! `n`-th time it reaches that point.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use durable_tests::workflows::register_all;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn millis(var: &str, default: u64) -> Duration {
    let ms = std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_millis(ms)
}

/// Arms `CRASH_AT`, if set.
fn arm_crash() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var("CRASH_AT") else {
        return Ok(());
    };
    let (point, nth) = spec
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("CRASH_AT is <point>:<n>, got {spec}"))?;
    let nth: u32 = nth.parse()?;
    let reached = AtomicU32::new(0);
    let announce = format!("crashing at {spec}");
    fail::cfg_callback(point, move || {
        if reached.fetch_add(1, Ordering::SeqCst) + 1 == nth {
            eprintln!("{announce}");
            std::process::abort();
        }
    })
    .map_err(anyhow::Error::msg)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .init();
    arm_crash()?;
    let url = std::env::var("DATABASE_URL")?;
    let store = durable::store::connect(&url).await?;
    let worker = register_all(durable_worker::Worker::builder_arc(store))
        .lease_ttl(millis("LEASE_MS", 1000))
        .poll_interval(millis("POLL_MS", 100))
        .concurrency(count("CONCURRENCY", 32))
        .build();
    let shutdown = worker.shutdown_token();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            shutdown.cancel();
        }
    });
    // Its wall clock, so that a test can check the skew it gave it.
    println!(
        "worker ready pid={} clock={}",
        std::process::id(),
        chrono::Utc::now().timestamp()
    );
    worker.run().await?;
    Ok(())
}
