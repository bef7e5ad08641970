//! When activities started, recorded by the activities themselves (same process, same clock
//! as the harness), so a workload can measure the gap between steps or the wait before the
//! first one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::bail;
use durable::RunId;
use tokio::sync::Notify;

/// Activity start instants by run.
#[derive(Debug, Default)]
pub(crate) struct StartLog {
    starts: Mutex<HashMap<RunId, Vec<Instant>>>,
    recorded: Notify,
}

impl StartLog {
    /// Called by an activity as it begins.
    pub(crate) fn record(&self, run: RunId) {
        self.lock().entry(run).or_default().push(Instant::now());
        self.recorded.notify_waiters();
    }

    /// Everything recorded so far, leaving the log empty.
    pub(crate) fn take(&self) -> HashMap<RunId, Vec<Instant>> {
        std::mem::take(&mut *self.lock())
    }

    /// The first activity start of `run`, once there is one; gives up after `limit` so a
    /// broken run stops the benchmark instead of hanging it.
    pub(crate) async fn first_start(&self, run: RunId, limit: Duration) -> anyhow::Result<Instant> {
        let give_up = tokio::time::Instant::now() + limit;
        loop {
            let recorded = self.recorded.notified();
            if let Some(first) = self.lock().get(&run).and_then(|s| s.first().copied()) {
                return Ok(first);
            }
            if tokio::time::timeout_at(give_up, recorded).await.is_err() {
                bail!("run {run} started no activity within {limit:?}");
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RunId, Vec<Instant>>> {
        self.starts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The gaps between consecutive activity starts of each run: one whole step each (the
/// activity, its checkpoint, and the workflow moving on to the next).
pub(crate) fn step_gaps(starts: HashMap<RunId, Vec<Instant>>) -> Vec<Duration> {
    starts
        .into_values()
        .flat_map(|mut run| {
            run.sort_unstable();
            run.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        })
        .collect()
}
