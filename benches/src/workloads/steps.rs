//! (b) Ten sequential no-op activities: per-step checkpoint latency at depth 1, and steps/s
//! with one run at a time and with 64 runs in flight.

use std::sync::LazyLock;
use std::time::Instant;

use durable::prelude::*;
use durable::{GroupCommitStats, PgStore};

use super::{Bench, CONCURRENCY, start_all, store_span, stored_runs, wait_all};
use crate::probe::{StartLog, step_gaps};
use crate::report::{Basis, Row, Unit};
use crate::stats::{Samples, rate};
use crate::workers::InProcessWorker;

const STEPS: u32 = 10;

static STARTS: LazyLock<StartLog> = LazyLock::new(StartLog::default);

#[durable::activity(name = "bench_noop")]
async fn noop(ctx: &ActivityCtx, i: u32) -> Result<u32, ActivityError> {
    STARTS.record(ctx.run_id());
    Ok(i)
}

#[durable::workflow(name = "bench_steps")]
async fn ten_steps(ctx: &WorkflowCtx, _n: u32) -> Result<(), WorkflowError> {
    for i in 0..STEPS {
        noop(ctx, i).await?;
    }
    Ok(())
}

pub(crate) async fn run(bench: &Bench<'_>) -> anyhow::Result<Vec<Row>> {
    let worker = InProcessWorker::start(&bench.store, CONCURRENCY, |b| b.register(ten_steps));
    let rows = async { Ok(vec![depth_one(bench).await?, concurrent(bench).await?]) }.await;
    worker.stop().await?;
    rows
}

/// One run at a time: each gap between two activity starts is one step's full cost.
async fn depth_one(bench: &Bench<'_>) -> anyhow::Result<Row> {
    let n = bench.pick(20, 100);
    bench.progress(&format!(
        "b/steps: {n} runs of {STEPS} steps, one at a time"
    ));
    let client = bench.client();
    STARTS.take();
    let started = Instant::now();
    for i in 0..n as u32 {
        client.start(ten_steps, i).await?.result().await?;
    }
    let per_second = rate(n * STEPS as usize, started.elapsed());
    let gaps = Samples::from_durations(step_gaps(STARTS.take()));
    Ok(bench
        .row("b/steps-depth-1", n)
        .rate(per_second, Unit::Steps)
        .latency(&gaps)
        .ratio(bench.floor.latency_ratio(gaps.p50()), Basis::Latency)
        .with("steps_per_run", STEPS))
}

/// Many runs queued, 64 in flight: steps/s over the store's span; the step gaps show what
/// one step costs under that load.
async fn concurrent(bench: &Bench<'_>) -> anyhow::Result<Row> {
    let n = bench.pick(128, 1000);
    bench.progress(&format!(
        "b/steps: {n} runs of {STEPS} steps, {CONCURRENCY} in flight"
    ));
    let client = bench.client();
    STARTS.take();
    let batching = GroupCommit::watch(bench);
    let handles = start_all(&client, ten_steps, (0..n as u32).collect()).await?;
    wait_all(&handles).await?;
    let span = store_span(&stored_runs::<ten_steps>(&client, n).await?)?;
    let per_second = rate(n * STEPS as usize, span);
    let gaps = Samples::from_durations(step_gaps(STARTS.take()));
    let row = bench
        .row(&format!("b/steps-{CONCURRENCY}-concurrent"), n)
        .rate(per_second, Unit::Steps)
        .latency(&gaps)
        .ratio(bench.floor.rate_ratio(per_second), Basis::Rate)
        .with("steps_per_run", STEPS)
        .with("concurrency", CONCURRENCY);
    Ok(batching.report(bench, row))
}

/// The Postgres store's group commit over one workload: how many checkpoints shared each
/// statement.
struct GroupCommit(Option<GroupCommitStats>);

impl GroupCommit {
    fn watch(bench: &Bench<'_>) -> Self {
        Self(bench.store.as_postgres().map(PgStore::group_commit_stats))
    }

    fn report(self, bench: &Bench<'_>, row: Row) -> Row {
        let (Some(before), Some(pg)) = (self.0, bench.store.as_postgres()) else {
            return row;
        };
        let after = pg.group_commit_stats();
        let batches = after.batches - before.batches;
        let per_batch = (after.checkpoints - before.checkpoints) as f64 / batches.max(1) as f64;
        row.with("checkpoint_batches", batches)
            .with("checkpoints_per_batch", (per_batch * 10.0).round() / 10.0)
            .note(format!(
                "group commit wrote {per_batch:.1} checkpoints per statement on average \
                 ({batches} statements, largest {})",
                after.largest
            ))
    }
}
