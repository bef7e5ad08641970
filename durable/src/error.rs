//! Errors: [`enum@Error`] for the client and stores, [`ActivityError`] for activity code and
//! [`WorkflowError`] for workflow code.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::RunId;

/// Errors from the client, the stores and the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached or rejected a statement.
    #[error("database error: {0}")]
    Database(String),
    /// The stored schema is newer than this build understands, or could not be migrated.
    #[error("schema error: {0}")]
    Schema(String),
    /// A value could not be converted to or from JSON.
    #[error("serialization error: {0}")]
    Serialization(#[from] serde_json::Error),
    /// No run with this id exists in the workspace.
    #[error("run {0} not found")]
    RunNotFound(RunId),
    /// No schedule with this name exists in the workspace.
    #[error("schedule `{0}` not found")]
    ScheduleNotFound(String),
    /// A run with the same workflow id exists but was started with another workflow or input.
    #[error(
        "workflow id `{workflow_id}` is already used by run {run_id} with {reason}; \
         a workflow id names one run, so pick another id or start with the same input"
    )]
    IdConflict {
        /// The workflow id that was asked for.
        workflow_id: String,
        /// The existing run that owns it.
        run_id: RunId,
        /// What differs.
        reason: String,
    },
    /// The run ended in failure.
    #[error("run {run_id} failed: {message}")]
    RunFailed {
        /// The run.
        run_id: RunId,
        /// Why it failed.
        message: String,
    },
    /// The run was cancelled.
    #[error("run {0} was cancelled")]
    RunCancelled(RunId),
    /// The run is parked and needs a human.
    #[error("run {run_id} is parked: {reason}")]
    RunParked {
        /// The run.
        run_id: RunId,
        /// Why it was parked.
        reason: String,
    },
    /// The caller's lease on the run is gone: another worker owns it now, or it was cancelled.
    #[error("lease on run {0} was lost; the write was refused")]
    LeaseLost(RunId),
    /// Waiting for a run gave up.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The request itself is invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The database refused a value it can never store (a Postgres data exception, such as a
    /// NUL character inside JSON): asking again cannot help.
    #[error("the database refused a value: {0}")]
    Refused(String),
}

/// Result alias with [`enum@Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        // The Display of a db error is only "db error"; the source has the server's message.
        match err.as_db_error() {
            // Class 22, "data exception": the value itself is at fault, not the connection.
            Some(db) if db.code().code().starts_with("22") => {
                Error::Refused(format!("{}: {}", db.code().code(), db.message()))
            }
            Some(db) => Error::Database(format!("{}: {}", db.code().code(), db.message())),
            None => Error::Database(with_cause(&err)),
        }
    }
}

/// A tokio-postgres error with its cause: its own Display names only the kind of failure
/// ("error performing TLS handshake"), not what went wrong.
pub(crate) fn with_cause(err: &tokio_postgres::Error) -> String {
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Error::Database(other.to_string()),
        }
    }
}

/// The error an activity returns. Retryable unless made [`terminal`](ActivityError::terminal).
///
/// Any `std::error::Error` converts into a retryable `ActivityError`, so `?` works in
/// activity code. Like `anyhow::Error`, this type does not implement `std::error::Error`
/// itself, which is what makes that blanket conversion possible.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityError {
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    retryable: bool,
    #[serde(skip)]
    retry_after: Option<Duration>,
    #[serde(skip)]
    halted: bool,
    #[serde(skip)]
    cancelled: bool,
}

impl ActivityError {
    /// An error that may succeed if tried again (network blips, 5xx, timeouts).
    pub fn retryable(err: impl fmt::Display) -> Self {
        Self {
            message: err.to_string(),
            kind: None,
            retryable: true,
            retry_after: None,
            halted: false,
            cancelled: false,
        }
    }

    /// An error that will not succeed on retry (bad input, 4xx): retries stop at once.
    pub fn terminal(err: impl fmt::Display) -> Self {
        Self::retryable(err).into_terminal()
    }

    /// Makes this error terminal.
    pub fn into_terminal(mut self) -> Self {
        self.retryable = false;
        self
    }

    /// Tags the error with a kind, matched against [`RetryPolicy::non_retryable`](crate::RetryPolicy::non_retryable).
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Asks for the next attempt no sooner than `delay` (an upstream `Retry-After`); it
    /// overrides the policy's backoff.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// The error message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error kind, if tagged.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The delay asked for by [`retry_after`](Self::retry_after).
    pub fn retry_after_hint(&self) -> Option<Duration> {
        self.retry_after
    }

    /// True when the run stopped (suspended, parked, lease lost) rather than the activity failing.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    pub(crate) fn halted() -> Self {
        Self {
            halted: true,
            ..Self::terminal("the run was halted (suspended, parked, cancelled or its lease lost)")
        }
    }

    /// True when the activity did not run because the run was asked to cancel. Passing it
    /// on (with `?`) ends the run cancelled; a workflow may instead clean up first.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The activity's view of a workflow error that stopped it before it ran.
    pub(crate) fn stopped_by(err: WorkflowError) -> Self {
        if err.cancelled {
            return Self {
                cancelled: true,
                ..Self::terminal(err.message)
            };
        }
        Self::halted()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActivityError {
    fn from(err: E) -> Self {
        Self::retryable(err)
    }
}

impl fmt::Display for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(kind) => write!(f, "{kind}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl fmt::Debug for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityError")
            .field("message", &self.message)
            .field("kind", &self.kind)
            .field("retryable", &self.retryable)
            .finish()
    }
}

/// The error a workflow returns. A workflow that returns it fails its run, unless the error
/// only says the run was halted (suspended for a timer, parked, or its lease lost).
///
/// Like [`ActivityError`], any `std::error::Error` converts into it with `?`.
pub struct WorkflowError {
    message: String,
    halted: bool,
    cancelled: bool,
}

impl WorkflowError {
    /// A workflow failure with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            halted: false,
            cancelled: false,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the run was halted (not a failure): the engine resumes it later or a human must.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    pub(crate) fn halted() -> Self {
        Self {
            halted: true,
            ..Self::msg("the run was halted (suspended, parked, cancelled or its lease lost)")
        }
    }

    /// True when the run was asked to cancel (or timed out) and this is how the workflow
    /// learns it. Returning it ends the run `cancelled`; a workflow may first clean up: the
    /// durable operations after this one run normally.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Why the run is cancelled, as the workflow sees it.
    pub(crate) fn cancelled(reason: &str) -> Self {
        Self {
            cancelled: true,
            ..Self::msg(reason)
        }
    }
}

impl From<ActivityError> for WorkflowError {
    fn from(err: ActivityError) -> Self {
        Self {
            message: err.to_string(),
            halted: err.halted,
            cancelled: err.cancelled,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for WorkflowError {
    fn from(err: E) -> Self {
        Self::msg(err)
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowError")
            .field("message", &self.message)
            .field("halted", &self.halted)
            .finish()
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::Database(err.to_string())
    }
}
