//! Errors: [`enum@Error`] for the client and stores, [`ActivityError`] for activity code and
//! [`WorkflowError`] for workflow code.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::RunId;

/// The underlying error of a database failure: the driver's, or the operating system's.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors from the client, the stores and the engine.
///
/// Database failures keep the driver's error (a [`tokio_postgres::Error`], a
/// [`rusqlite::Error`], …) as their [`source`](std::error::Error::source), so it can be
/// downcast; [`sqlstate`](Error::sqlstate) and [`sqlite_code`](Error::sqlite_code) read the
/// codes most callers want. Their message already names the server's code and message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached, rejected a statement, or holds a value this build
    /// cannot read. Made with [`Error::database`] or [`Error::database_caused_by`].
    #[error("database error: {message}")]
    #[non_exhaustive]
    Database {
        /// What went wrong, with the server's code and message when there was one.
        message: String,
        /// The driver's (or the operating system's) error, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// The stored schema is newer than this build understands, or could not be migrated.
    /// Made with [`Error::schema`] or [`Error::schema_caused_by`].
    #[error("schema error: {message}")]
    #[non_exhaustive]
    Schema {
        /// What went wrong.
        message: String,
        /// The failed migration's error, when there was one.
        #[source]
        source: Option<Cause>,
    },
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
    /// NUL character inside JSON): asking again cannot help. Made with [`Error::refused`] or
    /// [`Error::refused_caused_by`].
    #[error("the database refused a value: {message}")]
    #[non_exhaustive]
    Refused {
        /// What was refused, with the server's code and message.
        message: String,
        /// The driver's error, when there was one.
        #[source]
        source: Option<Cause>,
    },
}

/// Result alias with [`enum@Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A database error with no underlying error (a value this build cannot read, a file
    /// that is not a Durable database).
    pub fn database(message: impl Into<String>) -> Self {
        Self::Database {
            message: message.into(),
            source: None,
        }
    }

    /// A database error caused by `source` (the driver's error), kept as its source.
    pub fn database_caused_by<E>(message: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Database {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A schema error with no underlying error (a schema newer than this build).
    pub fn schema(message: impl Into<String>) -> Self {
        Self::Schema {
            message: message.into(),
            source: None,
        }
    }

    /// A schema error caused by `source` (a failed migration's error), kept as its source.
    pub fn schema_caused_by<E>(message: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Schema {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A refused value with no underlying error.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refused {
            message: message.into(),
            source: None,
        }
    }

    /// A refused value, caused by `source` (the driver's error), kept as its source.
    pub fn refused_caused_by<E>(message: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Refused {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The SQLSTATE of the Postgres error behind this one (`"23505"`, `"22P05"`, …), if the
    /// server reported one.
    pub fn sqlstate(&self) -> Option<&str> {
        self.cause::<tokio_postgres::Error>()?
            .as_db_error()
            .map(|db| db.code().code())
    }

    /// The primary code of the SQLite error behind this one, if there is one. Its extended
    /// code is on the [`rusqlite::Error`] itself, reachable through
    /// [`source`](std::error::Error::source).
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        self.cause::<rusqlite::Error>()?.sqlite_error_code()
    }

    /// Whether a unique key refused the statement (Postgres `23505`; SQLite's unique and
    /// primary-key constraints): a value that must be unique, such as a workflow id, is taken.
    pub fn is_unique_violation(&self) -> bool {
        if self.sqlstate() == Some("23505") {
            return true;
        }
        match self.cause::<rusqlite::Error>() {
            Some(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }

    /// The first error of type `T` in this error's chain of sources.
    fn cause<T: std::error::Error + 'static>(&self) -> Option<&T> {
        let mut next = std::error::Error::source(self);
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<T>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

/// How a Postgres error reads: its Display is only "db error" when the server answered, so
/// the server's code and message are spelled out.
pub(crate) fn describe_postgres(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => with_cause(err),
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        let message = describe_postgres(&err);
        // Class 22, "data exception": the value itself is at fault, not the connection.
        let refused = err
            .as_db_error()
            .is_some_and(|db| db.code().code().starts_with("22"));
        match refused {
            true => Error::refused_caused_by(message, err),
            false => Error::database_caused_by(message, err),
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
            other => Error::database_caused_by(other.to_string(), other),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::database_caused_by(err.to_string(), err)
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// A primary key inserted twice: a constraint violation.
    fn duplicate_key() -> rusqlite::Error {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
            .unwrap();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err()
    }

    #[test]
    fn a_sqlite_error_is_kept_as_the_source() {
        let driver = duplicate_key();
        let text = driver.to_string();
        let err = Error::from(driver);
        assert!(matches!(err, Error::Database { .. }), "{err:?}");
        assert!(err.to_string().contains(&text), "{err}");
        let source = err.source().expect("a source");
        let sqlite = source
            .downcast_ref::<rusqlite::Error>()
            .expect("the rusqlite error");
        assert_eq!(
            sqlite.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        assert_eq!(
            err.sqlite_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        assert_eq!(err.sqlstate(), None);
        assert!(err.is_unique_violation());
    }

    #[test]
    fn a_cause_is_found_anywhere_in_the_chain() {
        let driver = duplicate_key();
        let err = Error::schema_caused_by("migration 1 (init) failed", Error::from(driver));
        assert_eq!(
            err.sqlite_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        assert!(err.source().unwrap().downcast_ref::<Error>().is_some());
    }

    #[test]
    fn message_only_errors_have_no_source() {
        for err in [
            Error::database("not a Durable database"),
            Error::schema("newer than this build"),
            Error::refused("22P05: unsupported Unicode escape sequence"),
        ] {
            assert!(err.source().is_none(), "{err:?}");
            assert_eq!(err.sqlstate(), None);
            assert_eq!(err.sqlite_code(), None);
        }
        assert_eq!(Error::database("gone").to_string(), "database error: gone");
        assert_eq!(
            Error::refused("22P05: bad").to_string(),
            "the database refused a value: 22P05: bad"
        );
    }
}
