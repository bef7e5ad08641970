//! The [`Store`] trait: everything the engine asks of a database, and the records it trades.
//!
//! A store is the coordination point of a worker pool. Its guarantees, which every backend
//! must keep (and the conformance tests check):
//! - a claim is atomic: one run goes to one worker, which gets a fresh lease `epoch`;
//! - every write by a worker names `(run, epoch)` and is refused once the epoch moved on;
//! - time comes from the database clock; claims count as attempts;
//! - a step result and the run's next state are recorded in one transaction.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::Result;
use crate::run::{RunFilter, RunId, RunInfo, RunStatus, StepRecord, WorkspaceId};

pub mod postgres;
pub mod schedules;
mod select;
pub mod sqlite;

pub use select::{DEFAULT_URL, connect, url_from_env};

/// A run to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id, if a new run is created.
    pub id: RunId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// Unique per workspace: starting the same workflow id again returns the existing run.
    pub workflow_id: String,
    /// The workflow to run.
    pub workflow_name: String,
    /// The workflow's version.
    pub workflow_version: u32,
    /// The input, as JSON.
    pub input: Value,
    /// Claims in a row without progress before the run is parked.
    pub max_claims: u32,
    /// The run that started this one as a child; it is told when this one finishes.
    pub parent_run_id: Option<RunId>,
    /// How long it may take from its start, by the database clock: past that it is asked to
    /// cancel.
    pub timeout: Option<Duration>,
}

/// What [`Store::start_run`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedRun {
    /// The run with this workflow id.
    pub id: RunId,
    /// True when this call created it.
    pub created: bool,
    /// The existing run's workflow name (when not created).
    pub workflow_name: String,
    /// The existing run's input (when not created).
    pub input: Value,
}

/// A worker's request for work.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Who is claiming (shown in `lease_owner`).
    pub worker_id: String,
    /// Workflows this worker can run.
    pub workflows: Vec<String>,
    /// At most this many runs.
    pub limit: u32,
    /// Lease length.
    pub lease_ttl: Duration,
    /// Runs this worker is executing. They are not claimed again even when their lease has
    /// run out: a late heartbeat may still extend it, and the heartbeat decides when it is lost.
    pub running: Vec<RunId>,
}

/// The right to write to one run: only the holder of the current epoch may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The run.
    pub run_id: RunId,
    /// The fencing epoch, raised by every claim.
    pub epoch: i64,
}

/// A run handed to a worker by [`Store::claim`].
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    /// The run as it is now (status `running`, or `parked` if this claim hit the limit).
    pub info: RunInfo,
    /// The lease the worker holds.
    pub lease: Lease,
    /// The database clock at the claim.
    pub db_now: DateTime<Utc>,
    /// The recorded steps, by sequence number.
    pub history: Vec<StepRecord>,
}

impl ClaimedRun {
    /// False when the run cannot have recorded a step yet: this is its first claim (every
    /// claim raises the epoch, and only a lease holder records) and it is not a fork (which
    /// starts with its origin's steps). A store need not read such a run's history.
    pub fn may_have_history(&self) -> bool {
        self.lease.epoch > 1 || self.info.forked_from.is_some()
    }
}

/// The run's next state, recorded together with a checkpoint's steps.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Transition {
    /// Keep running; the lease is extended.
    Continue,
    /// Release the run until `wake_at` (a durable timer).
    Sleep {
        /// When it becomes claimable again.
        wake_at: DateTime<Utc>,
    },
    /// Finish with this output.
    Complete {
        /// The output, as JSON.
        output: Value,
    },
    /// Finish with this error.
    Fail {
        /// Why.
        error: String,
    },
    /// Finish cancelled: the workflow ended on the cancellation it was asked for.
    Cancel {
        /// Why it was cancelled.
        reason: String,
    },
    /// Stop for a human.
    Park {
        /// Why.
        reason: String,
    },
    /// Hand the run back unfinished (graceful shutdown): it is pending again.
    Release,
    /// Release the run until a message on one of `topics` arrives, or until `wake_at` (the
    /// timeout). If such a message is already there, the run is claimable at once: a message
    /// sent while the run was deciding to wait is not missed.
    Wait {
        /// The topics waited for; none contains a newline.
        topics: Vec<String>,
        /// When the wait times out.
        wake_at: DateTime<Utc>,
    },
}

impl Transition {
    /// What a finished child tells its parent: `{"ok": output}`, `{"error": message}` or
    /// `{"cancelled": true}`.
    pub fn child_outcome(&self) -> Option<Value> {
        match self {
            Self::Complete { output } => Some(serde_json::json!({ "ok": output })),
            Self::Fail { error } => Some(serde_json::json!({ "error": error })),
            Self::Cancel { .. } => Some(serde_json::json!({ "cancelled": true })),
            _ => None,
        }
    }

    /// The status the run takes.
    pub fn status(&self) -> RunStatus {
        match self {
            Self::Continue => RunStatus::Running,
            Self::Sleep { .. } | Self::Wait { .. } => RunStatus::Sleeping,
            Self::Complete { .. } => RunStatus::Completed,
            Self::Fail { .. } => RunStatus::Failed,
            Self::Cancel { .. } => RunStatus::Cancelled,
            Self::Park { .. } => RunStatus::Parked,
            Self::Release => RunStatus::Pending,
        }
    }
}

/// Steps to record and the run's next state: one transaction, fenced by the lease.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The writer's lease; the write is refused with [`Error::LeaseLost`](crate::Error::LeaseLost)
    /// if it is not current.
    pub lease: Lease,
    /// Steps to insert or update (by sequence number).
    pub steps: Vec<StepRecord>,
    /// The run's next state.
    pub transition: Transition,
    /// Lease length, for [`Transition::Continue`].
    pub lease_ttl: Duration,
    /// Messages taken by the steps recorded here, as `(message, step seq)`; marked taken in
    /// the same transaction.
    pub consumed: Vec<(MessageId, u32)>,
    /// Events published by the steps recorded here, as `(key, value)`.
    pub events: Vec<(String, Value)>,
    /// The workflow has learned that its run was asked to cancel. Until it has, a run asked
    /// to cancel that sleeps or waits is due at once, so that it learns it.
    pub cancel_seen: bool,
}

impl Checkpoint {
    /// A checkpoint that records nothing but the run's next state.
    pub fn transition(lease: Lease, transition: Transition, lease_ttl: Duration) -> Self {
        Self {
            lease,
            steps: Vec::new(),
            transition,
            lease_ttl,
            consumed: Vec::new(),
            events: Vec::new(),
            cancel_seen: false,
        }
    }
}

/// A lease a heartbeat extended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewed {
    /// The run.
    pub run_id: RunId,
    /// Why it was asked to cancel, if it was.
    pub cancel_requested: Option<String>,
}

/// How the topics of a wait are stored in `runs.waiting_topic`: one line each.
pub(crate) fn waiting_topic(topics: &[String]) -> String {
    topics.join("\n")
}

/// Identifies one message sent to a run.
pub type MessageId = i64;

/// A message sent to a run, not yet taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Its id, in the order messages were sent.
    pub id: MessageId,
    /// The topic it was sent on.
    pub topic: String,
    /// Its payload.
    pub payload: Value,
}

/// A fork to create with [`Store::fork_run`].
#[derive(Debug, Clone)]
pub struct NewFork {
    /// The workspace of both runs.
    pub workspace_id: WorkspaceId,
    /// The run forked.
    pub origin: RunId,
    /// Steps before this sequence number are copied; the rest run again.
    pub from_seq: u32,
    /// The fork's id.
    pub id: RunId,
    /// The fork's workflow id (unique per workspace).
    pub workflow_id: String,
    /// A new input, or the origin's when `None`.
    pub input: Option<Value>,
}

/// A message to deliver with [`Store::send_message`].
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The run's workspace.
    pub workspace_id: WorkspaceId,
    /// The run it goes to.
    pub run_id: RunId,
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Value,
    /// A key that makes the send idempotent: a second send with the same key to the same run
    /// is not delivered again.
    pub idempotency_key: Option<String>,
}

/// Hints a store broadcasts so waiters need not poll hard. Never required for correctness.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// A run of this workflow may be claimable.
    RunReady(String),
    /// This run reached a final or parked state.
    RunFinished(RunId),
    /// Hints may have been missed (reconnect): look again.
    Resync,
}

/// Everything the engine needs from a database. Implemented by [`PgStore`](crate::PgStore)
/// and [`SqliteStore`](crate::SqliteStore).
#[async_trait]
pub trait Store: fmt::Debug + Send + Sync + 'static {
    /// Creates a run, or returns the existing one with the same workflow id.
    async fn start_run(&self, run: NewRun) -> Result<StartedRun>;

    /// Atomically claims up to `limit` runs that are pending, due, or whose lease expired.
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedRun>>;

    /// Records steps and the run's next state in one transaction, if `lease` is current.
    /// Returns the database clock.
    async fn checkpoint(&self, checkpoint: Checkpoint) -> Result<DateTime<Utc>>;

    /// Extends the leases still held; returns the runs whose lease is still current, with
    /// any cancellation asked of them since.
    async fn heartbeat(&self, leases: &[Lease], lease_ttl: Duration) -> Result<Vec<Renewed>>;

    /// How long until the earliest sleeping run of these workflows is due, by the database
    /// clock (zero if one is overdue); `None` if none sleeps.
    async fn next_wake_in(&self, workflows: &[String]) -> Result<Option<Duration>>;

    /// The database clock.
    async fn now(&self) -> Result<DateTime<Utc>>;

    /// One run.
    async fn get_run(&self, workspace: WorkspaceId, id: RunId) -> Result<Option<RunInfo>>;

    /// Runs matching the filter, newest first.
    async fn list_runs(&self, workspace: WorkspaceId, filter: &RunFilter) -> Result<Vec<RunInfo>>;

    /// The recorded steps of a run.
    async fn steps(&self, workspace: WorkspaceId, id: RunId) -> Result<Vec<StepRecord>>;

    /// Ends a run that has not finished, and its descendants, at once: cancelled, its lease
    /// holder's next write refused. Returns the status after the call.
    async fn cancel_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus>;

    /// Asks a run and its descendants, those not finished, to cancel. Those no worker has
    /// started yet, and parked ones, are cancelled at once; the others record `reason` in
    /// `cancel_requested` (sleeping ones are due at once) and see it at their next durable
    /// operation. Returns the run's status after the call.
    async fn request_cancel(
        &self,
        workspace: WorkspaceId,
        id: RunId,
        reason: &str,
    ) -> Result<RunStatus>;

    /// Parks a pending or sleeping run; asks a running one to park after its current step.
    /// Returns the status after the call.
    async fn pause_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus>;

    /// Makes a parked run pending again, with its claim count reset (or withdraws a pause a
    /// running run has not reached yet). Returns the status after the call.
    async fn resume_run(&self, workspace: WorkspaceId, id: RunId) -> Result<RunStatus>;

    /// Creates a pending run of the origin's workflow with the origin's steps before
    /// `from_seq` copied. Refuses to copy a child start: the child reports to its parent only.
    async fn fork_run(&self, fork: NewFork) -> Result<RunId>;

    /// Delivers a message to a run that has not finished, waking it if it waits for the
    /// topic. Returns false when a message with the same idempotency key was already sent.
    async fn send_message(&self, message: NewMessage) -> Result<bool>;

    /// The oldest message on any of `topics` that no step of the run has taken yet.
    async fn next_message(&self, run: RunId, topics: &[String]) -> Result<Option<Message>>;

    /// The latest value a run published under `key`.
    async fn get_event(
        &self,
        workspace: WorkspaceId,
        run: RunId,
        key: &str,
    ) -> Result<Option<Value>>;

    /// Subscribes to hints about new and finished runs.
    fn events(&self) -> broadcast::Receiver<StoreEvent>;

    /// This store as a [`PgStore`](crate::PgStore), for transactional steps.
    fn as_postgres(&self) -> Option<&crate::PgStore> {
        None
    }

    /// This store as a [`SqliteStore`](crate::SqliteStore), for transactional steps.
    fn as_sqlite(&self) -> Option<&crate::SqliteStore> {
        None
    }

    /// The store's cron schedules, if it keeps them (both built-in stores do).
    fn as_schedules(&self) -> Option<&dyn schedules::ScheduleStore> {
        None
    }
}

/// The error for a fork whose copied steps would include a child start.
pub(crate) fn fork_blocked(origin: RunId, from_seq: u32) -> crate::Error {
    crate::Error::Invalid(format!(
        "run {origin} started a child workflow before step {from_seq}; a fork cannot copy it \
         (the child reports to its parent only): fork from an earlier step"
    ))
}
