//! A worker process for the crash-recovery benchmark; see `durable_benches::bench_worker`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    durable_benches::bench_worker::main().await
}
