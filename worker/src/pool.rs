//! The claim loop: claim up to the free slots, execute, wait for work, repeat.

use std::time::Duration;

use durable::runtime::{CancelSignal, Outcome, execute};
use durable::store::{Checkpoint, ClaimRequest, ClaimedRun, Lease, StoreEvent, Transition};
use durable::{Result, RunStatus};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Worker;
use crate::heartbeat::{self, Inflight};

impl Worker {
    /// Runs the pool until the [shutdown token](Worker::shutdown_token) is cancelled.
    pub async fn run(self) -> Result<()> {
        let names: Vec<String> = self.workflows.keys().map(|n| n.to_string()).collect();
        tracing::info!(
            worker_id = %self.config.worker_id,
            workflows = ?names,
            concurrency = self.config.concurrency,
            lease_ttl = ?self.config.lease_ttl,
            "worker started"
        );
        let inflight = Inflight::default();
        let stop_heartbeat = CancellationToken::new();
        tokio::spawn(heartbeat::run(
            self.store.clone(),
            inflight.clone(),
            self.config.heartbeat_interval,
            self.config.lease_ttl,
            stop_heartbeat.clone(),
        ));
        tokio::spawn(crate::scheduler::run(
            self.store.clone(),
            self.config.poll_interval,
            self.shutdown.clone(),
        ));
        let mut events = self.store.events();
        let mut tasks = JoinSet::new();
        let mut error_backoff = Duration::from_millis(50);
        while !self.shutdown.is_cancelled() {
            // Finished runs still count in the set until joined: reap them all first.
            while let Some(finished) = tasks.try_join_next() {
                log_panic(Some(finished));
            }
            let free = self.config.concurrency - tasks.len();
            let mut idle_wait = self.config.poll_interval;
            if free > 0 {
                match self.claim(&names, free, &inflight).await {
                    Ok(runs) if self.shutdown.is_cancelled() => {
                        // Shutdown began while this claim was in flight: hand them back.
                        for run in runs {
                            self.release(run.lease).await;
                        }
                    }
                    Ok(runs) => {
                        error_backoff = Duration::from_millis(50);
                        let saturated = runs.len() == free;
                        for run in runs {
                            self.spawn(run, &inflight, &mut tasks);
                        }
                        if saturated {
                            // There may be more: claim again once a slot frees up.
                            idle_wait = Duration::ZERO;
                        } else {
                            idle_wait = self.until_next_timer(&names).await;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "claim failed; retrying");
                        idle_wait = error_backoff;
                        error_backoff = (error_backoff * 2).min(self.config.poll_interval);
                    }
                }
            }
            self.wait_for_work(&names, &mut events, &mut tasks, idle_wait, free)
                .await;
        }
        self.drain(&inflight, &mut tasks).await;
        stop_heartbeat.cancel();
        tracing::info!(worker_id = %self.config.worker_id, "worker stopped");
        Ok(())
    }

    async fn claim(
        &self,
        names: &[String],
        free: usize,
        inflight: &Inflight,
    ) -> Result<Vec<ClaimedRun>> {
        let request = ClaimRequest {
            worker_id: self.config.worker_id.clone(),
            workflows: names.to_vec(),
            limit: free as u32,
            lease_ttl: self.config.lease_ttl,
            running: inflight.leases().iter().map(|l| l.run_id).collect(),
        };
        self.store.claim(&request).await
    }

    fn spawn(&self, run: ClaimedRun, inflight: &Inflight, tasks: &mut JoinSet<Outcome>) {
        if run.info.status == RunStatus::Parked {
            tracing::error!(
                event = "run_parked",
                run_id = %run.info.id,
                reason = run.info.error.as_deref().unwrap_or_default(),
                "run parked at claim"
            );
            return;
        }
        let Some(workflow) = self.workflows.get(run.info.workflow_name.as_str()).cloned() else {
            return;
        };
        let stop = CancellationToken::new();
        let signal = CancelSignal::new(&stop);
        let guard = inflight.enter(run.lease, stop.clone(), signal.clone());
        let store = self.store.clone();
        let settings = self.config.execution();
        tasks.spawn(async move {
            let _guard = guard;
            execute(store, &*workflow, run, settings, stop, signal).await
        });
    }

    /// How long until a sleeping run is due, capped by the poll interval.
    async fn until_next_timer(&self, names: &[String]) -> Duration {
        match self.store.next_wake_in(names).await {
            Ok(Some(due_in)) => due_in.min(self.config.poll_interval),
            _ => self.config.poll_interval,
        }
    }

    /// Returns when there may be something to claim: a notification for one of our
    /// workflows, a finished run (a free slot, and maybe a new timer), or `idle_wait`.
    async fn wait_for_work(
        &self,
        names: &[String],
        events: &mut broadcast::Receiver<StoreEvent>,
        tasks: &mut JoinSet<Outcome>,
        idle_wait: Duration,
        free: usize,
    ) {
        // When full, only a finished run makes room; notifications are ignored until then.
        let full = free == 0;
        let sleep = tokio::time::sleep(if full {
            self.config.poll_interval
        } else {
            idle_wait
        });
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = &mut sleep => return,
                finished = tasks.join_next(), if !tasks.is_empty() => {
                    log_panic(finished);
                    return;
                }
                event = events.recv(), if !full => match event {
                    Ok(StoreEvent::RunReady(name)) if names.contains(&name) => return,
                    Ok(StoreEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        *events = self.store.events();
                    }
                },
            }
        }
    }

    /// Lets in-flight runs finish for up to the shutdown timeout, then stops the rest and
    /// hands them back so another worker picks them up at once.
    async fn drain(&self, inflight: &Inflight, tasks: &mut JoinSet<Outcome>) {
        tracing::info!(in_flight = tasks.len(), "shutting down: no new claims");
        let deadline = tokio::time::sleep(self.config.shutdown_timeout);
        tokio::pin!(deadline);
        while !tasks.is_empty() {
            tokio::select! {
                finished = tasks.join_next() => log_panic(finished),
                _ = &mut deadline => break,
            }
        }
        let leftover = inflight.leases();
        inflight.stop_lost(&leftover, &[]);
        tasks.shutdown().await;
        for lease in leftover {
            self.release(lease).await;
        }
    }

    /// Hands a run back unfinished, so another worker can claim it at once.
    async fn release(&self, lease: Lease) {
        let release = Checkpoint::transition(lease, Transition::Release, self.config.lease_ttl);
        match self.store.checkpoint(release).await {
            Ok(_) => tracing::info!(run_id = %lease.run_id, "handed the run back"),
            Err(err) => tracing::warn!(
                run_id = %lease.run_id,
                error = %err,
                "could not hand the run back; its lease will expire"
            ),
        }
    }
}

fn log_panic(finished: Option<std::result::Result<Outcome, tokio::task::JoinError>>) {
    if let Some(Err(err)) = finished
        && err.is_panic()
    {
        // The lease is left to expire: the run is retried elsewhere and, if it keeps
        // panicking, parked after its claim limit.
        tracing::error!(error = %err, "workflow panicked");
    }
}
