//! Keeps the leases of in-flight runs alive, and stops runs whose lease is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use durable::runtime::CancelSignal;
use durable::store::{Lease, Renewed};
use durable::{RunId, Store};
use tokio_util::sync::CancellationToken;

/// A run this worker executes: its lease, the token that stops it, and the signal that tells
/// it it was asked to cancel.
#[derive(Debug)]
struct Execution {
    lease: Lease,
    stop: CancellationToken,
    signal: CancelSignal,
}

/// The runs this worker executes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inflight {
    runs: Arc<Mutex<HashMap<RunId, Execution>>>,
}

impl Inflight {
    /// Registers a run; it is unregistered when the returned guard drops (even on panic).
    pub(crate) fn enter(
        &self,
        lease: Lease,
        stop: CancellationToken,
        signal: CancelSignal,
    ) -> InflightGuard {
        let execution = Execution {
            lease,
            stop,
            signal,
        };
        self.lock().insert(lease.run_id, execution);
        InflightGuard {
            inflight: self.clone(),
            lease,
        }
    }

    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.lock().values().map(|e| e.lease).collect()
    }

    /// Tells the runs asked to cancel since they were claimed.
    pub(crate) fn tell_cancelled(&self, renewed: &[Renewed]) {
        let runs = self.lock();
        for renewal in renewed {
            if let (Some(execution), Some(reason)) =
                (runs.get(&renewal.run_id), &renewal.cancel_requested)
            {
                execution.signal.ask(reason);
            }
        }
    }

    /// Stops the runs of `checked` whose lease is not in `alive`. Runs claimed since the
    /// check are left alone: they were not asked about.
    pub(crate) fn stop_lost(&self, checked: &[Lease], alive: &[RunId]) {
        let runs = self.lock();
        for lease in checked.iter().filter(|l| !alive.contains(&l.run_id)) {
            if let Some(execution) = runs.get(&lease.run_id)
                && execution.lease == *lease
                && !execution.stop.is_cancelled()
            {
                tracing::warn!(event = "lease_lost", run_id = %lease.run_id, "lease lost; stopping the run here");
                execution.stop.cancel();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Execution>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Unregisters a run from [`Inflight`] when dropped.
#[derive(Debug)]
pub(crate) struct InflightGuard {
    inflight: Inflight,
    lease: Lease,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        // A newer lease on the same run (this worker claimed it again after the old one
        // expired) stays registered, so it keeps being heartbeated.
        let mut runs = self.inflight.lock();
        if runs
            .get(&self.lease.run_id)
            .is_some_and(|e| e.lease == self.lease)
        {
            runs.remove(&self.lease.run_id);
        }
    }
}

/// Extends leases every `interval` until `stop`. A failed heartbeat is retried after a fifth
/// of the interval: most failures are one dead pooled connection, and the next one works. If
/// the store cannot be reached for a whole lease, every run is stopped: this worker can no
/// longer prove it owns them.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    inflight: Inflight,
    interval: Duration,
    lease_ttl: Duration,
    stop: CancellationToken,
) {
    let mut last_ok = Instant::now();
    let mut wait = interval;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = interval;
        let leases = inflight.leases();
        if leases.is_empty() {
            last_ok = Instant::now();
            continue;
        }
        match store.heartbeat(&leases, lease_ttl).await {
            Ok(renewed) => {
                last_ok = Instant::now();
                let alive: Vec<RunId> = renewed.iter().map(|r| r.run_id).collect();
                inflight.stop_lost(&leases, &alive);
                inflight.tell_cancelled(&renewed);
            }
            Err(err) => {
                tracing::warn!(error = %err, "heartbeat failed");
                wait = interval / 5;
                if last_ok.elapsed() >= lease_ttl {
                    inflight.stop_lost(&leases, &[]);
                }
            }
        }
    }
}
