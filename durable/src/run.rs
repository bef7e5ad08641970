//! Runs, steps and their identifiers, as stored and as shown to users.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Identifies one run (one execution of a workflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub Uuid);

impl RunId {
    /// A new, time-ordered id (UUIDv7), so new runs land at the end of the index.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RunId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Identifies a workspace: every run and step belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkspaceId(pub Uuid);

impl WorkspaceId {
    /// The workspace every store creates on first start, used when none is named.
    pub const DEFAULT: WorkspaceId = WorkspaceId(Uuid::nil());
}

impl Default for WorkspaceId {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// The name stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)* }
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)*
                    other => Err(crate::Error::database(
                        format!("unknown {} `{other}` in the database", stringify!($name)))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Where a run is in its life.
    RunStatus {
        /// Waiting to be claimed by a worker.
        Pending = "pending",
        /// Claimed by a worker that holds its lease.
        Running = "running",
        /// Suspended on a durable timer (a sleep or a retry backoff); claimable when due.
        Sleeping = "sleeping",
        /// Finished with an output.
        Completed = "completed",
        /// Finished with an error.
        Failed = "failed",
        /// Cancelled by a client.
        Cancelled = "cancelled",
        /// Stopped for a human: non-determinism, exhausted retries with `on_exhausted = pause`,
        /// or too many claims without progress.
        Parked = "parked",
    }
}

impl RunStatus {
    /// Whether the run has finished for good (completed, failed or cancelled).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

string_enum! {
    /// The kind of durable operation a step records. New durable operations add kinds.
    #[non_exhaustive]
    StepKind {
        /// An activity's result.
        Activity = "activity",
        /// A durable timer.
        Sleep = "sleep",
        /// A value of `ctx.now()`.
        Now = "now",
        /// A value of `ctx.random()`.
        Random = "random",
        /// A value of `ctx.uuid()`.
        Uuid = "uuid",
        /// A message taken by `ctx.recv()` (or its timeout).
        Recv = "recv",
        /// An event published by `ctx.set_event()`.
        SetEvent = "set_event",
        /// A child workflow started by `ctx.start_child()` (its run id).
        StartChild = "start_child",
        /// A transactional step: its SQL committed with its record.
        Transaction = "transaction",
        /// A marker of `ctx.patched()`: the run took the new code path of this change.
        Patch = "patch",
        /// Where the workflow learned that the run was asked to cancel (or timed out).
        Cancel = "cancel",
    }
}

string_enum! {
    /// The state of a recorded step.
    StepStatus {
        /// Finished with an output (or, for a sleep, its due time recorded).
        Completed = "completed",
        /// Finished with an error that the workflow sees.
        Failed = "failed",
        /// An attempt failed and another one is due at `wake_at`.
        Retrying = "retrying",
        /// Waiting for a message until `wake_at`.
        Waiting = "waiting",
    }
}

/// One recorded step of a run: the unit of replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Position in the run, from 0, in the order the workflow asked for its durable operations.
    pub seq: u32,
    /// The step's name (the activity's name, or `sleep`, `now`, …).
    pub name: String,
    /// What kind of operation it records.
    pub kind: StepKind,
    /// Its state.
    pub status: StepStatus,
    /// The result, as JSON.
    pub output: Option<Value>,
    /// The last error, as JSON.
    pub error: Option<Value>,
    /// Attempts made so far (activities).
    pub attempts: u32,
    /// A sleep's due time, or when a retrying activity's next attempt is due.
    pub wake_at: Option<DateTime<Utc>>,
    /// When the first attempt started (activities), for `max_duration`.
    pub first_attempt_at: Option<DateTime<Utc>>,
}

/// A run as shown to users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's id.
    pub id: RunId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// The workflow id it was started with (unique per workspace).
    pub workflow_id: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// The workflow's version when the run started.
    pub workflow_version: u32,
    /// Where it is in its life.
    pub status: RunStatus,
    /// Its input.
    pub input: Value,
    /// Its output, once completed.
    pub output: Option<Value>,
    /// Why it failed or was parked.
    pub error: Option<String>,
    /// Claims in a row without progress (a claim counts as an attempt).
    pub claims: u32,
    /// Claims in a row without progress allowed before it is parked.
    pub max_claims: u32,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it is due (sleeping runs).
    pub wake_at: Option<DateTime<Utc>>,
    /// The message topics a sleeping run waits for, one a line (it wakes early when a
    /// message on one of them arrives).
    pub waiting_for: Option<String>,
    /// The run that started this one as a child.
    pub parent_run_id: Option<RunId>,
    /// The run this one was forked from.
    pub forked_from: Option<RunId>,
    /// Why it was asked to cancel, once it was: the workflow sees the cancellation at its
    /// next durable operation.
    pub cancel_requested: Option<String>,
    /// When it times out: past this, it is asked to cancel.
    pub deadline: Option<DateTime<Utc>>,
}

/// Which runs [`Client::list`](crate::Client::list) returns, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow.
    pub workflow_name: Option<String>,
    /// Only runs created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only runs created before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

impl RunFilter {
    /// Keeps runs in this status.
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Keeps runs of this workflow.
    pub fn workflow(mut self, name: impl Into<String>) -> Self {
        self.workflow_name = Some(name.into());
        self
    }

    /// Returns at most `n` runs.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    pub(crate) fn effective_limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(100).min(10_000))
    }
}
