//! `cargo bench -p durable-benches [-- --quick] [--store postgres|sqlite|all] [--only …]`

use std::path::Path;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    durable_benches::run(Path::new(env!("CARGO_BIN_EXE_bench-worker"))).await
}
