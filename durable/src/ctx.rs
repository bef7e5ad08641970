//! [`WorkflowCtx`]: every durable operation of a workflow goes through it.
//!
//! Replay works by position: each operation takes the next sequence number; if the history
//! has a record there, its result is returned without running anything, otherwise the
//! operation runs and its result is recorded. A record whose name or kind differs from what
//! the code asks for means the code changed under a running workflow: the run is parked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::distr::{Distribution, StandardUniform};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::clock::DbClock;
use crate::run::{RunInfo, StepKind, StepRecord, StepStatus};
use crate::store::{Checkpoint, Lease, Store, Transition};
use crate::{Error, RunId, WorkflowError, WorkspaceId};

mod activity;
mod cancel;
mod children;
mod messages;
mod transaction;
mod versioning;

pub use cancel::CancelSignal;
pub use children::ChildHandle;
pub use messages::Received;

/// How a run is executed; chosen by the worker.
#[derive(Debug, Clone)]
pub struct ExecutionSettings {
    /// Lease length; every checkpoint extends the lease by this much.
    pub lease_ttl: Duration,
    /// Waits (sleeps, retry backoffs) up to this long stay in memory while the worker keeps
    /// the lease; longer ones release the run and become durable timers.
    pub inline_wait: Duration,
}

impl Default for ExecutionSettings {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            inline_wait: Duration::from_secs(1),
        }
    }
}

/// Why a run stopped running on this worker before finishing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Halt {
    /// Released until a durable timer is due.
    Suspended {
        /// When it is due.
        wake_at: DateTime<Utc>,
    },
    /// Parked for a human.
    Parked {
        /// Why.
        reason: String,
    },
    /// Another worker or a cancellation took the run: nothing more may be recorded.
    LeaseLost,
}

/// The handle a workflow uses for every durable operation. Cheap to clone.
#[derive(Clone)]
pub struct WorkflowCtx {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    run: RunInfo,
    lease: Lease,
    settings: ExecutionSettings,
    history: HashMap<u32, StepRecord>,
    clock: DbClock,
    cancel: CancellationToken,
    signal: CancelSignal,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_seq: u32,
    /// Records of local operations (`now`, `random`, …) not yet written: they ride along
    /// with the next checkpoint, so they cost no round trip of their own.
    pending: Vec<StepRecord>,
    halt: Option<Halt>,
    versioning: versioning::Versioning,
    /// The workflow has learned that the run is cancelled (it learns it once).
    cancel_delivered: bool,
}

impl std::fmt::Debug for WorkflowCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowCtx")
            .field("run_id", &self.inner.run.id)
            .field("workflow", &self.inner.run.workflow_name)
            .finish()
    }
}

impl WorkflowCtx {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        claimed: crate::store::ClaimedRun,
        settings: ExecutionSettings,
        cancel: CancellationToken,
        signal: CancelSignal,
    ) -> Self {
        let history = claimed.history.into_iter().map(|s| (s.seq, s)).collect();
        if let Some(reason) = &claimed.info.cancel_requested {
            signal.ask(reason);
        }
        Self {
            inner: Arc::new(Inner {
                store,
                run: claimed.info,
                lease: claimed.lease,
                settings,
                history,
                clock: DbClock::new(claimed.db_now),
                cancel,
                signal,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.inner.run.id
    }

    /// The workflow id the run was started with.
    pub fn workflow_id(&self) -> &str {
        &self.inner.run.workflow_id
    }

    /// The run's workspace.
    pub fn workspace_id(&self) -> WorkspaceId {
        self.inner.run.workspace_id
    }

    /// True while the workflow is replaying recorded steps rather than making new ones;
    /// useful to keep logs from repeating on every resume.
    pub fn is_replaying(&self) -> bool {
        self.inner.history.contains_key(&self.state().next_seq)
    }

    /// The current time from the database clock, recorded: a replay returns the same value.
    pub async fn now(&self) -> Result<DateTime<Utc>, WorkflowError> {
        let now = self.inner.clock.now();
        self.local_value(StepKind::Now, move || now).await
    }

    /// A random value, recorded: a replay returns the same value.
    pub async fn random<T>(&self) -> Result<T, WorkflowError>
    where
        StandardUniform: Distribution<T>,
        T: Serialize + DeserializeOwned,
    {
        self.local_value(StepKind::Random, rand::random::<T>).await
    }

    /// A random (v4) UUID, recorded: a replay returns the same value.
    pub async fn uuid(&self) -> Result<Uuid, WorkflowError> {
        self.local_value(StepKind::Uuid, Uuid::new_v4).await
    }

    /// A durable timer: the run sleeps `duration` by the database clock and survives restarts.
    ///
    /// Short sleeps (up to the worker's `inline_wait`) are waited in memory after the timer
    /// is recorded; longer ones release the run, which any worker resumes when it is due.
    pub async fn sleep(&self, duration: Duration) -> Result<(), WorkflowError> {
        let (seq, recorded) = self.begin_step(StepKind::Sleep, "sleep").await?;
        let wake_at = match recorded.and_then(|r| r.wake_at) {
            Some(wake_at) => wake_at,
            None => {
                let wake_at = self.inner.clock.now() + duration;
                let record = StepRecord {
                    wake_at: Some(wake_at),
                    ..new_record(seq, "sleep", StepKind::Sleep, StepStatus::Completed)
                };
                self.state().pending.push(record);
                wake_at
            }
        };
        self.wait_until(seq, wake_at, None).await
    }

    /// Step `seq` waits until `wake_at`: in memory if it is near (after writing what is
    /// pending, so the timer survives a crash), else by releasing the run as a durable timer.
    /// A cancellation interrupts the wait.
    ///
    /// `not_before` ends a wait decided by this execution by the monotonic clock too: the
    /// database clock is re-anchored on each reading, and a reading lags by its own round
    /// trip, so a checkpoint between the decision and the wait could otherwise shorten it.
    async fn wait_until(
        &self,
        seq: u32,
        wake_at: DateTime<Utc>,
        not_before: Option<std::time::Instant>,
    ) -> Result<(), WorkflowError> {
        self.interrupt_wait(seq)?;
        let by_database = (wake_at - self.inner.clock.now())
            .to_std()
            .unwrap_or_default();
        let by_monotonic = not_before
            .map(|t| t.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_default();
        let remaining = by_database.max(by_monotonic);
        if remaining.is_zero() {
            return Ok(());
        }
        if remaining > self.inner.settings.inline_wait {
            let wake_at = self.due_by_deadline(wake_at);
            self.write(Vec::new(), Transition::Sleep { wake_at })
                .await?;
            self.halt(Halt::Suspended { wake_at });
            return Err(WorkflowError::halted());
        }
        if !self.state().pending.is_empty() {
            self.write(Vec::new(), Transition::Continue).await?;
        }
        if self.cancel_delivered() {
            tokio::time::sleep(remaining).await;
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(remaining) => Ok(()),
            _ = self.inner.signal.token().cancelled() => {
                self.interrupt_wait(seq)?;
                // Not a cancellation: the lease is lost, and the run is dropped here.
                Err(WorkflowError::halted())
            }
        }
    }

    /// When a run released until `wake_at` must be claimed again: no later than its deadline,
    /// so that it learns it timed out.
    pub(crate) fn due_by_deadline(&self, wake_at: DateTime<Utc>) -> DateTime<Utc> {
        match self.inner.run.deadline {
            Some(deadline) if !self.cancel_delivered() => wake_at.min(deadline),
            _ => wake_at,
        }
    }

    /// Records (or replays) a value produced locally, without a round trip of its own.
    async fn local_value<T>(
        &self,
        kind: StepKind,
        produce: impl FnOnce() -> T,
    ) -> Result<T, WorkflowError>
    where
        T: Serialize + DeserializeOwned,
    {
        let (seq, recorded) = self.begin_step(kind, kind.as_str()).await?;
        if let Some(record) = recorded {
            return self.decode_output(&record).await;
        }
        let value = produce();
        let output = serde_json::to_value(&value)?;
        let record = StepRecord {
            output: Some(output),
            ..new_record(seq, kind.as_str(), kind, StepStatus::Completed)
        };
        self.state().pending.push(record);
        Ok(value)
    }

    /// Takes the next sequence number and returns its record, if any. Parks the run if the
    /// record is of another step.
    async fn begin_step(
        &self,
        kind: StepKind,
        name: &str,
    ) -> Result<(u32, Option<StepRecord>), WorkflowError> {
        let seq = {
            let mut state = self.state();
            if state.halt.is_some() {
                return Err(WorkflowError::halted());
            }
            state.next_seq += 1;
            state.next_seq - 1
        };
        self.replay_guard(seq, kind, name)?;
        let Some(record) = self.inner.history.get(&seq) else {
            if let Some(reason) = self.pending_cancellation() {
                return Err(self.deliver_cancellation(seq, reason, None));
            }
            return Ok((seq, None));
        };
        if record.kind == StepKind::Cancel {
            return Err(self.replay_cancellation(record));
        }
        if record.kind != kind || record.name != name {
            let reason = format!(
                "non-determinism at step {seq}: the history records {} `{}` there, but the \
                 workflow code now asks for {kind} `{name}`; the code changed while this run \
                 was in flight (deploy the previous version to finish it, or bump the \
                 workflow version for new runs)",
                record.kind, record.name
            );
            return Err(self.park(reason).await);
        }
        Ok((seq, Some(record.clone())))
    }

    async fn decode_output<T: DeserializeOwned>(
        &self,
        record: &StepRecord,
    ) -> Result<T, WorkflowError> {
        let value = record.output.clone().unwrap_or(Value::Null);
        match serde_json::from_value(value) {
            Ok(v) => Ok(v),
            Err(e) => {
                let reason = format!(
                    "non-determinism at step {}: the recorded output of {} `{}` no longer \
                     decodes as the type the code expects: {e}",
                    record.seq, record.kind, record.name
                );
                Err(self.park(reason).await)
            }
        }
    }

    /// Parks the run and returns the error that unwinds the workflow.
    pub(crate) async fn park(&self, reason: String) -> WorkflowError {
        if self
            .write(
                Vec::new(),
                Transition::Park {
                    reason: reason.clone(),
                },
            )
            .await
            .is_ok()
        {
            self.halt(Halt::Parked { reason });
        }
        WorkflowError::halted()
    }

    /// Records steps (plus anything pending) and the run's next state, fenced by the lease.
    /// Database errors are retried for as long as the lease is ours; once the worker's
    /// heartbeat says it is lost, or the store refuses the write, the run halts here and is
    /// recovered from its history elsewhere.
    pub(crate) async fn write(
        &self,
        steps: Vec<StepRecord>,
        transition: Transition,
    ) -> Result<(), WorkflowError> {
        let mut checkpoint =
            Checkpoint::transition(self.inner.lease, transition, self.inner.settings.lease_ttl);
        checkpoint.steps = steps;
        self.commit(checkpoint).await
    }

    /// Writes a checkpoint, anything pending first; see [`write`](Self::write).
    ///
    /// Retrying is safe: the write is fenced by the lease's epoch, and writing the same steps
    /// again changes nothing. Giving up early would be worse than waiting: a run abandoned
    /// while its lease is still held waits for the lease to expire and counts one more claim
    /// without progress, so a flaky connection could park a healthy run.
    pub(crate) async fn commit(&self, mut checkpoint: Checkpoint) -> Result<(), WorkflowError> {
        let mut all = std::mem::take(&mut self.state().pending);
        all.append(&mut checkpoint.steps);
        checkpoint.steps = all;
        checkpoint.cancel_seen = self.cancel_delivered();
        let mut backoff = Duration::from_millis(20);
        loop {
            let error = match self.inner.store.checkpoint(checkpoint.clone()).await {
                Ok(db_now) => {
                    fault_point!("checkpoint.after");
                    self.inner.clock.observe(db_now);
                    return Ok(());
                }
                Err(e @ Error::Database { .. }) => {
                    tracing::warn!(error = %e, "checkpoint failed; retrying while the lease holds");
                    tokio::select! {
                        _ = self.inner.cancel.cancelled() => e,
                        _ = tokio::time::sleep(backoff) => {
                            backoff = (backoff * 2).min(Duration::from_secs(1));
                            continue;
                        }
                    }
                }
                Err(Error::Refused { message, .. }) => {
                    return Err(self.park_refused(&message).await);
                }
                Err(e) => e,
            };
            tracing::warn!(event = "lease_lost", error = %error, "checkpoint refused; abandoning the run here");
            self.halt(Halt::LeaseLost);
            self.inner.cancel.cancel();
            return Err(WorkflowError::halted());
        }
    }

    /// The database will never store what this checkpoint carries (a value the workflow
    /// produced): retrying would loop for as long as the lease holds, and abandoning the run
    /// would fail the same way on every claim. The run is parked for a human instead, without
    /// the refused steps; resuming it replays from what is recorded.
    async fn park_refused(&self, why: &str) -> WorkflowError {
        let reason = format!(
            "the database refused to record this run's progress ({why}); a step produced a \
             value it cannot store: fix the workflow or activity, then resume the run"
        );
        tracing::error!(event = "checkpoint_refused", reason = %reason, "checkpoint refused by the database");
        // Written once, not through `commit`: a failure here leaves the run to its next claim.
        let park = Checkpoint::transition(
            self.inner.lease,
            Transition::Park {
                reason: reason.clone(),
            },
            self.inner.settings.lease_ttl,
        );
        match self.inner.store.checkpoint(park).await {
            Ok(db_now) => {
                self.inner.clock.observe(db_now);
                self.halt(Halt::Parked { reason });
            }
            Err(error) => {
                tracing::warn!(event = "lease_lost", error = %error, "could not park the run; abandoning it here");
                self.halt(Halt::LeaseLost);
                self.inner.cancel.cancel();
            }
        }
        WorkflowError::halted()
    }

    pub(crate) fn halt(&self, halt: Halt) {
        self.state().halt.get_or_insert(halt);
    }

    pub(crate) fn lease(&self) -> Lease {
        self.inner.lease
    }

    pub(crate) fn lease_ttl(&self) -> Duration {
        self.inner.settings.lease_ttl
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub(crate) fn observe_clock(&self, db_now: DateTime<Utc>) {
        self.inner.clock.observe(db_now);
    }

    pub(crate) fn clock_now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn halted(&self) -> Option<Halt> {
        self.state().halt.clone()
    }

    pub(crate) fn run(&self) -> &RunInfo {
        &self.inner.run
    }

    /// The first recorded step the code did not ask for, if the code finished early.
    pub(crate) fn unreplayed_step(&self) -> Option<&StepRecord> {
        let next = self.state().next_seq;
        self.inner.history.get(&next)
    }
}

pub(crate) fn new_record(seq: u32, name: &str, kind: StepKind, status: StepStatus) -> StepRecord {
    StepRecord {
        seq,
        name: name.to_owned(),
        kind,
        status,
        output: None,
        error: None,
        attempts: 0,
        wake_at: None,
        first_attempt_at: None,
    }
}
