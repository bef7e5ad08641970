//! A worker process running the test workflows, for tests that kill, stop and restart workers.
//! Configured by `DATABASE_URL`, `LEASE_MS` and `POLL_MS`; stops gracefully on SIGTERM.

use std::time::Duration;

use durable_tests::workflows::register_all;

fn millis(var: &str, default: u64) -> Duration {
    let ms = std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_millis(ms)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .init();
    let url = std::env::var("DATABASE_URL")?;
    let store = durable::store::connect(&url).await?;
    let worker = register_all(durable_worker::Worker::builder_arc(store))
        .lease_ttl(millis("LEASE_MS", 1000))
        .poll_interval(millis("POLL_MS", 100))
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
    println!("worker ready pid={}", std::process::id());
    worker.run().await?;
    Ok(())
}
