//! (f) Many sleeping workflows due at the same instant: how late each one wakes.
//!
//! Every run gets the same absolute due time (store clock, microseconds) in its input and
//! sleeps until then, so they all fall due together however long starting them took.

use std::time::Duration;

use chrono::{DateTime, Utc};
use durable::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Bench, CONCURRENCY, start_all, wait_all};
use crate::report::{Basis, Row, Unit};
use crate::stats::{Samples, rate};
use crate::workers::InProcessWorker;

/// When a run armed its timer and when it woke, by the store clock (µs since the epoch).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Wake {
    armed_us: i64,
    woke_us: i64,
}

#[durable::workflow(name = "bench_sleeper")]
async fn sleeper(ctx: &WorkflowCtx, due_us: i64) -> Result<Wake, WorkflowError> {
    let armed = ctx.now().await?.timestamp_micros();
    let wait = u64::try_from(due_us - armed).unwrap_or(0);
    ctx.sleep(Duration::from_micros(wait)).await?;
    let woke = ctx.now().await?.timestamp_micros();
    Ok(Wake {
        armed_us: armed,
        woke_us: woke,
    })
}

pub(crate) async fn run(bench: &Bench<'_>) -> anyhow::Result<Vec<Row>> {
    let n = bench.pick(1000, 10_000);
    // Long enough to start every run and then let each arm its timer before the due
    // instant; `armed_margin_ms` in the result says by how much it was.
    let lead = Duration::from_secs(2) + Duration::from_millis(5) * n as u32;
    bench.progress(&format!(
        "f/sleepers: {n} runs due at once, {:.1} s from now",
        lead.as_secs_f64()
    ));
    let due = bench.store.now().await? + lead;
    let client = bench.client();
    let handles = start_all(&client, sleeper, vec![due.timestamp_micros(); n]).await?;
    // Started only now, so the starts do not compete with the arming of the timers.
    let worker = InProcessWorker::start(&bench.store, CONCURRENCY, |b| b.register(sleeper));
    let wakes = wait_all(&handles).await;
    worker.stop().await?;
    Ok(vec![row(bench, due, &wakes?)])
}

fn row(bench: &Bench<'_>, due: DateTime<Utc>, wakes: &[Wake]) -> Row {
    let due_us = due.timestamp_micros();
    let late_ms = |w: &Wake| (w.woke_us - due_us) as f64 / 1000.0;
    let lateness = Samples::from_millis(wakes.iter().map(late_ms).collect());
    let last_woke = wakes.iter().map(|w| w.woke_us).max().unwrap_or(due_us);
    let drained = Duration::from_micros(u64::try_from(last_woke - due_us).unwrap_or(0));
    let per_second = rate(wakes.len(), drained);
    let last_armed = wakes.iter().map(|w| w.armed_us).max().unwrap_or(due_us);
    bench
        .row("f/sleepers-wake", wakes.len())
        .rate(per_second, Unit::Workflows)
        .latency(&lateness)
        .ratio(bench.floor.rate_ratio(per_second), Basis::Rate)
        .with("concurrency", CONCURRENCY)
        .with("armed_margin_ms", (due_us - last_armed) as f64 / 1000.0)
        .with(
            "armed_late",
            wakes.iter().filter(|w| w.armed_us > due_us).count(),
        )
}
