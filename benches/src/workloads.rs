//! The workloads of design §8, one module each, sharing the context in [`Bench`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use durable::{Client, RunFilter, RunHandle, RunInfo, Store, Workflow};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use crate::floor::Floor;
use crate::report::Row;
use crate::target::StoreKind;

pub(crate) mod connector;
pub(crate) mod crash;
pub(crate) mod empty;
pub(crate) mod fan_out;
pub(crate) mod intake;
pub(crate) mod sleepers;
pub(crate) mod steps;

/// Worker slots of the in-process worker pool in every workload.
pub(crate) const CONCURRENCY: usize = 64;
/// How many `client.start` calls are in flight when a workload starts many runs at once.
pub(crate) const STARTERS: usize = 16;

/// What a workload runs against.
#[derive(Debug)]
pub(crate) struct Bench<'a> {
    /// The in-process workers' store.
    pub(crate) store: Arc<dyn Store>,
    /// The clients' store (see [`StoreTarget`](crate::target::StoreTarget)).
    pub(crate) client_store: Arc<dyn Store>,
    pub(crate) kind: StoreKind,
    pub(crate) url: &'a str,
    pub(crate) floor: Floor,
    pub(crate) quick: bool,
    pub(crate) worker_bin: &'a Path,
}

impl Bench<'_> {
    /// `quick` under `--quick`, else `full`.
    pub(crate) fn pick(&self, quick: usize, full: usize) -> usize {
        if self.quick { quick } else { full }
    }

    pub(crate) fn client(&self) -> Client {
        Client::from_arc(self.client_store.clone())
    }

    /// A result row of this store.
    pub(crate) fn row(&self, workload: &str, runs: usize) -> Row {
        Row::new(workload, self.kind.name(), runs)
    }

    /// A progress line on stderr.
    pub(crate) fn progress(&self, what: &str) {
        eprintln!("[bench] {:<8} {what}", self.kind.name());
    }
}

/// Starts one run of `workflow` per input, [`STARTERS`] starts in flight at a time.
pub(crate) async fn start_all<W>(
    client: &Client,
    workflow: W,
    inputs: Vec<W::Input>,
) -> anyhow::Result<Vec<RunHandle<W::Output>>>
where
    W: Workflow + Copy,
    W::Input: Sync,
{
    let handles = futures::stream::iter(inputs)
        .map(|input| client.start(workflow, input).into_future())
        .buffer_unordered(STARTERS)
        .try_collect()
        .await?;
    Ok(handles)
}

/// Waits for every run to finish, one after the other (a finished run costs one read), and
/// returns their outputs.
pub(crate) async fn wait_all<O: DeserializeOwned>(
    handles: &[RunHandle<O>],
) -> anyhow::Result<Vec<O>> {
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        let output = handle
            .result()
            .await
            .with_context(|| format!("run {}", handle.id()))?;
        outputs.push(output);
    }
    Ok(outputs)
}

/// The stored runs of workflow `W` (at most 10,000), for the store's own timestamps.
pub(crate) async fn stored_runs<W: Workflow>(
    client: &Client,
    n: usize,
) -> anyhow::Result<Vec<RunInfo>> {
    let filter = RunFilter::default().workflow(W::NAME).limit(n as u32);
    Ok(client.list(filter).await?)
}

/// From the first run's creation to the last one's last update (its completion), by the
/// store's clock: the span over which the store did the work, without the harness's
/// observation delay.
pub(crate) fn store_span(runs: &[RunInfo]) -> anyhow::Result<Duration> {
    let first = runs.iter().map(|r| r.created_at).min().context("no runs")?;
    let last = runs.iter().map(|r| r.updated_at).max().context("no runs")?;
    Ok((last - first).to_std()?)
}
