//! What activity code sees: [`ActivityCtx`], and the options an activity runs under.

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::{RetryPolicy, RunId, WorkspaceId};

/// The context of one activity attempt.
#[derive(Debug, Clone)]
pub struct ActivityCtx {
    pub(crate) run_id: RunId,
    pub(crate) workspace_id: WorkspaceId,
    pub(crate) workflow_id: String,
    pub(crate) workflow_name: String,
    pub(crate) seq: u32,
    pub(crate) name: String,
    pub(crate) attempt: u32,
    pub(crate) idempotency_key: String,
    pub(crate) cancel: CancellationToken,
}

impl ActivityCtx {
    /// A key unique to this step of this run, the same on every retry and replay: send it
    /// upstream (an `Idempotency-Key` header) so a repeated attempt causes at most one effect.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    /// This attempt's number, from 1. It survives crashes: failed attempts are recorded.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The run this step belongs to.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The run's workspace.
    pub fn workspace_id(&self) -> WorkspaceId {
        self.workspace_id
    }

    /// The workflow id the run was started with.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The workflow's name.
    pub fn workflow_name(&self) -> &str {
        &self.workflow_name
    }

    /// The step's position in the run.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// The activity's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once the run was asked to cancel (or timed out), or this worker lost its lease:
    /// stop soon. After a cancellation, what the activity returns is still recorded (return
    /// what it has, or an error); after a lost lease, nothing is. Cleanup activities that run
    /// after the workflow learned of its cancellation are not told again.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when [`is_cancelled`](Self::is_cancelled) becomes true; `select!` on it in
    /// long-running activities.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }
}

/// How an activity runs: its name in the history and its retry policy.
#[derive(Debug, Clone)]
pub struct ActivityOptions {
    pub(crate) name: String,
    pub(crate) retry: RetryPolicy,
}

impl ActivityOptions {
    /// Options for the activity recorded under `name`, with the default retry policy.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
}
