//! (c) Fan-out of N child workflows and the join: time from the parent's start until it has
//! every child's result and completes.

use std::time::Instant;

use durable::prelude::*;

use super::{Bench, CONCURRENCY};
use crate::report::{Row, Unit};
use crate::stats::rate;
use crate::workers::InProcessWorker;

/// A child: does nothing but return its input.
#[durable::workflow(name = "bench_child")]
async fn child(_ctx: &WorkflowCtx, n: u32) -> Result<u32, WorkflowError> {
    Ok(n)
}

/// Starts `n` children, then awaits each: the fan-out and the join.
#[durable::workflow(name = "bench_fan_out")]
async fn parent(ctx: &WorkflowCtx, n: u32) -> Result<u64, WorkflowError> {
    let mut children = Vec::with_capacity(n as usize);
    for i in 0..n {
        children.push(ctx.start_child(child, i).await?);
    }
    let mut sum = 0;
    for handle in children {
        sum += u64::from(handle.result(ctx).await?);
    }
    Ok(sum)
}

pub(crate) async fn run(bench: &Bench<'_>) -> anyhow::Result<Vec<Row>> {
    let n = bench.pick(200, 1000) as u32;
    bench.progress(&format!(
        "c/fan-out: {n} children and the join (concurrency {CONCURRENCY})"
    ));
    let worker = InProcessWorker::start(&bench.store, CONCURRENCY, |b| {
        b.register(parent).register(child)
    });
    let measured = async {
        let started = Instant::now();
        let sum = bench.client().start(parent, n).await?.result().await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            sum == (0..u64::from(n)).sum::<u64>(),
            "the join added up to {sum}"
        );
        Ok(bench
            .row(&format!("c/fan-out-{n}"), 1)
            .rate(rate(n as usize, elapsed), Unit::Workflows)
            .with("children", n)
            .with("parent_resumed_after_ms", elapsed.as_secs_f64() * 1000.0))
    }
    .await;
    worker.stop().await?;
    Ok(vec![measured?])
}
