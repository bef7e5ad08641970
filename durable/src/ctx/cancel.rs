//! Cooperative cancellation: a run asked to cancel (or past its deadline) learns it at its
//! next durable operation, as an error it may pass on or handle with cleanup steps.
//!
//! Where it learned it is recorded as a `cancel` step, so a replay learns it at the same
//! place: at the start of a new step, or interrupting the wait of step `interrupted` (a
//! sleep, a retry backoff, a `recv`). Each run learns it once; the operations after it run
//! normally, which is what lets cleanup code call activities.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{WorkflowCtx, new_record};
use crate::WorkflowError;
use crate::run::{StepKind, StepRecord, StepStatus};

/// How a worker tells a run it executes that it was asked to cancel.
#[derive(Debug, Clone)]
pub struct CancelSignal {
    reason: Arc<Mutex<Option<String>>>,
    asked: CancellationToken,
}

impl CancelSignal {
    /// A signal for a run whose execution stops when `stop` is cancelled (lease lost).
    pub fn new(stop: &CancellationToken) -> Self {
        Self {
            reason: Arc::default(),
            asked: stop.child_token(),
        }
    }

    /// Tells the run it was asked to cancel; the first reason given is kept.
    pub fn ask(&self, reason: &str) {
        self.lock().get_or_insert_with(|| reason.to_owned());
        self.asked.cancel();
    }

    pub(crate) fn reason(&self) -> Option<String> {
        self.lock().clone()
    }

    /// Fires when the run is asked to cancel or its execution stops.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.asked
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl WorkflowCtx {
    /// Why the run must stop, if it has not learned it yet: a cancellation asked for, or its
    /// deadline passed (by the database clock).
    pub(super) fn pending_cancellation(&self) -> Option<String> {
        if self.state().cancel_delivered {
            return None;
        }
        if let Some(reason) = self.inner.signal.reason() {
            return Some(reason);
        }
        let deadline = self.inner.run.deadline?;
        (self.clock_now() >= deadline).then(|| format!("timed out: its deadline was {deadline}"))
    }

    /// Whether the run has learned of its cancellation already.
    pub(super) fn cancel_delivered(&self) -> bool {
        self.state().cancel_delivered
    }

    /// Records that the workflow learns of its cancellation at step `seq` and returns the
    /// error it sees; `interrupted` is the step whose wait it interrupts.
    pub(super) fn deliver_cancellation(
        &self,
        seq: u32,
        reason: String,
        interrupted: Option<u32>,
    ) -> WorkflowError {
        tracing::info!(event = "run_cancelling", seq, reason = %reason, "the workflow learns it is cancelled");
        let record = StepRecord {
            output: Some(json!({ "reason": reason, "interrupted": interrupted })),
            ..new_record(seq, "cancel", StepKind::Cancel, StepStatus::Completed)
        };
        let mut state = self.state();
        state.pending.push(record);
        state.cancel_delivered = true;
        WorkflowError::cancelled(&reason)
    }

    /// Replays a recorded cancellation: the workflow learns it here again.
    pub(super) fn replay_cancellation(&self, record: &StepRecord) -> WorkflowError {
        self.state().cancel_delivered = true;
        let reason = record
            .output
            .as_ref()
            .and_then(|o| o.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or("cancelled");
        WorkflowError::cancelled(reason)
    }

    /// Asks the unfinished children of a run about to end cancelled to cancel too: a run that
    /// timed out, or learned of a cancellation its children were not asked for, leaves none
    /// running. Before the run's own end is recorded, so that a crash in between is retried
    /// by the next worker; logged when it fails.
    pub(crate) async fn cancel_children(&self, reason: &str) {
        let asked = self
            .store()
            .request_cancel(self.workspace_id(), self.run_id(), reason)
            .await;
        if let Err(err) = asked {
            tracing::warn!(error = %err, "could not ask the children of a cancelled run to cancel");
        }
    }

    /// At the wait of step `waiting`, before waiting: the cancellation that interrupted this
    /// wait in the history, or one asked for now. Takes the next sequence number when it
    /// interrupts.
    pub(super) fn interrupt_wait(&self, waiting: u32) -> Result<(), WorkflowError> {
        self.interrupt_recorded(waiting)?;
        let next = self.state().next_seq;
        if self.inner.history.contains_key(&next) {
            // The wait ended normally the first time.
            return Ok(());
        }
        match self.pending_cancellation() {
            Some(reason) => {
                let error = self.deliver_cancellation(next, reason, Some(waiting));
                self.state().next_seq += 1;
                Err(error)
            }
            None => Ok(()),
        }
    }

    /// The cancellation that interrupted the wait of step `waiting` in the history, if one
    /// did: it interrupts the replay at the same place.
    fn interrupt_recorded(&self, waiting: u32) -> Result<(), WorkflowError> {
        let next = self.state().next_seq;
        match self.inner.history.get(&next) {
            Some(record)
                if record.kind == StepKind::Cancel
                    && record.output.as_ref().and_then(|o| o.get("interrupted"))
                        == Some(&json!(waiting)) =>
            {
                let error = self.replay_cancellation(record);
                self.state().next_seq += 1;
                Err(error)
            }
            _ => Ok(()),
        }
    }
}
