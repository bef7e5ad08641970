//! (a) The empty workflow, start to finish: workflows/s at saturation, and latency p50/p99
//! one run at a time.

use std::time::Instant;

use durable::RunInfo;
use durable::prelude::*;

use super::{Bench, CONCURRENCY, STARTERS, start_all, store_span, stored_runs, wait_all};
use crate::report::{Basis, Row, Unit};
use crate::stats::{Samples, rate};
use crate::workers::InProcessWorker;

/// Does nothing: what is left is the engine's own cost of a run.
#[durable::workflow(name = "bench_empty")]
async fn empty(_ctx: &WorkflowCtx, _n: u32) -> Result<(), WorkflowError> {
    Ok(())
}

pub(crate) async fn run(bench: &Bench<'_>) -> anyhow::Result<Vec<Row>> {
    let worker = InProcessWorker::start(&bench.store, CONCURRENCY, |b| b.register(empty));
    let rows = async { Ok(vec![saturation(bench).await?, latency(bench).await?]) }.await;
    worker.stop().await?;
    rows
}

/// Many runs started at once: the rate the store finishes them, by its own clock.
async fn saturation(bench: &Bench<'_>) -> anyhow::Result<Row> {
    let n = bench.pick(300, 2000);
    bench.progress(&format!(
        "a/empty: {n} runs at saturation (concurrency {CONCURRENCY})"
    ));
    let client = bench.client();
    let handles = start_all(&client, empty, (0..n as u32).collect()).await?;
    wait_all(&handles).await?;
    let span = store_span(&stored_runs::<empty>(&client, n).await?)?;
    let per_second = rate(n, span);
    Ok(bench
        .row("a/empty-saturation", n)
        .rate(per_second, Unit::Workflows)
        .ratio(bench.floor.rate_ratio(per_second), Basis::Rate)
        .with("concurrency", CONCURRENCY)
        .with("starters", STARTERS))
}

/// One run at a time: from `client.start` until the client sees its result.
async fn latency(bench: &Bench<'_>) -> anyhow::Result<Row> {
    let n = bench.pick(50, 200);
    bench.progress(&format!("a/empty: {n} runs one at a time"));
    let client = bench.client();
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n as u32 {
        let one = Instant::now();
        client.start(empty, i).await?.result().await?;
        samples.push(one.elapsed());
    }
    let per_second = rate(n, started.elapsed());
    let samples = Samples::from_durations(samples);
    let in_store = in_store(&stored_runs::<empty>(&client, n).await?);
    Ok(bench
        .row("a/empty-latency", n)
        .rate(per_second, Unit::Workflows)
        .latency(&samples)
        .ratio(bench.floor.latency_ratio(samples.p50()), Basis::Latency)
        .with("store_p50_ms", in_store.p50())
        .with("store_p99_ms", in_store.p99()))
}

/// Creation to completion by the store's clock: the latency without the client's insert
/// round trip and without its wait for the result.
fn in_store(runs: &[RunInfo]) -> Samples {
    let spans = runs.iter().map(|r| (r.updated_at - r.created_at).to_std());
    Samples::from_durations(spans.filter_map(Result::ok))
}
