//! (e) Intake → run started: through the client (`client.start` until the run's first
//! activity begins, while closed-loop clients keep starting and finishing runs in the
//! background) and through HTTP (a signed webhook delivery to `durable-server`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use durable::prelude::*;
use tokio_util::sync::CancellationToken;

use super::{Bench, CONCURRENCY};
use crate::probe::StartLog;
use crate::report::{Basis, Row, Unit};
use crate::stats::{Samples, rate};
use crate::workers::InProcessWorker;

mod webhook;

/// Closed-loop clients making the background load: each starts a run and waits for it.
const LOAD_CLIENTS: usize = 8;
/// A run that never starts would otherwise hang the benchmark.
pub(crate) const GIVE_UP: Duration = Duration::from_secs(30);

pub(crate) static STARTS: LazyLock<StartLog> = LazyLock::new(StartLog::default);

#[durable::activity(name = "bench_arrive")]
async fn arrive(ctx: &ActivityCtx) -> Result<(), ActivityError> {
    STARTS.record(ctx.run_id());
    Ok(())
}

#[durable::workflow(name = "bench_intake")]
async fn intake(ctx: &WorkflowCtx, _n: u32) -> Result<(), WorkflowError> {
    Ok(arrive(ctx).await?)
}

pub(crate) async fn run(bench: &Bench<'_>) -> anyhow::Result<Vec<Row>> {
    let n = bench.pick(50, 200);
    bench.progress(&format!(
        "e/intake (client start path): {n} samples under {LOAD_CLIENTS} closed-loop clients"
    ));
    let worker = InProcessWorker::start(&bench.store, CONCURRENCY, |b| b.register(intake));
    let load = Load::start(bench.client());
    let samples = sample(bench, n).await;
    let background = load.stop().await;
    worker.stop().await?;
    STARTS.take();
    let samples = Samples::from_durations(samples?);
    let mut rows = webhook::run(bench).await?;
    rows.insert(
        0,
        bench
            .row("e/intake-client-start", n)
            .rate(background?, Unit::Workflows)
            .latency(&samples)
            .ratio(bench.floor.latency_ratio(samples.p50()), Basis::Latency)
            .with("path", "client.start")
            .with("load_clients", LOAD_CLIENTS),
    );
    Ok(rows)
}

/// `n` runs, one after the other: start → first activity begins.
async fn sample(bench: &Bench<'_>, n: usize) -> anyhow::Result<Vec<Duration>> {
    let client = bench.client();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n as u32 {
        let sent = Instant::now();
        let handle = client.start(intake, i).await?;
        let began = STARTS.first_start(handle.id(), GIVE_UP).await?;
        samples.push(began.saturating_duration_since(sent));
        handle.result().await?;
    }
    Ok(samples)
}

/// The background load, and how many runs it finished.
#[derive(Debug)]
struct Load {
    stop: CancellationToken,
    finished: Arc<AtomicUsize>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Load {
    fn start(client: Client) -> Self {
        let stop = CancellationToken::new();
        let finished = Arc::new(AtomicUsize::new(0));
        let tasks = (0..LOAD_CLIENTS)
            .map(|_| tokio::spawn(load_client(client.clone(), stop.clone(), finished.clone())))
            .collect();
        Self {
            stop,
            finished,
            started: Instant::now(),
            tasks,
        }
    }

    /// Stops the load; returns the runs it finished per second while it ran.
    async fn stop(self) -> anyhow::Result<f64> {
        let per_second = rate(
            self.finished.load(Ordering::Relaxed),
            self.started.elapsed(),
        );
        self.stop.cancel();
        for task in self.tasks {
            task.await??;
        }
        Ok(per_second)
    }
}

async fn load_client(
    client: Client,
    stop: CancellationToken,
    finished: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    while !stop.is_cancelled() {
        client.start(intake, u32::MAX).await?.result().await?;
        finished.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
