//! How a connector call fails: every failure carries a [`ErrorKind`] that says whether
//! another attempt may help, and it is recorded with the step as the error's kind.

use std::fmt;
use std::time::Duration;

use durable::ActivityError;
use serde::{Deserialize, Serialize};

/// The classification of a failed connector call, recorded on the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The provider failed (5xx other than a limited 503): retried.
    Upstream,
    /// No answer in time: retried.
    Timeout,
    /// The connection failed (refused, reset, TLS): retried.
    Connection,
    /// 429, or 503 with `Retry-After`/`RateLimit`: retried no sooner than the provider asked.
    RateLimited,
    /// 401: the credential expired or was revoked. Terminal until the vault can refresh it.
    AuthExpired,
    /// Any other 4xx: the provider refused the request; retrying would not help.
    Rejected,
    /// The input failed the action's input schema.
    InvalidInput,
    /// The output failed the action's output schema.
    InvalidOutput,
    /// The address is not allowed (loopback, private, link-local, metadata) or the URL is bad.
    ForbiddenAddress,
    /// The response was larger than the configured cap.
    ResponseTooLarge,
    /// The script threw, or returned something that is not JSON.
    ScriptError,
    /// The script ran past its CPU time.
    ScriptTimeout,
    /// The script went over its memory cap.
    ScriptMemory,
    /// The connector, version, action or trigger does not exist, or the package is broken.
    NotFound,
}

impl ErrorKind {
    /// The name recorded as the step error's kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::RateLimited => "rate_limited",
            Self::AuthExpired => "auth_expired",
            Self::Rejected => "rejected",
            Self::InvalidInput => "invalid_input",
            Self::InvalidOutput => "invalid_output",
            Self::ForbiddenAddress => "forbidden_address",
            Self::ResponseTooLarge => "response_too_large",
            Self::ScriptError => "script_error",
            Self::ScriptTimeout => "script_timeout",
            Self::ScriptMemory => "script_memory",
            Self::NotFound => "not_found",
        }
    }

    /// Reads [`as_str`](Self::as_str) back.
    pub fn parse(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Upstream | Self::Timeout | Self::Connection | Self::RateLimited
        )
    }
}

const ALL: [ErrorKind; 14] = [
    ErrorKind::Upstream,
    ErrorKind::Timeout,
    ErrorKind::Connection,
    ErrorKind::RateLimited,
    ErrorKind::AuthExpired,
    ErrorKind::Rejected,
    ErrorKind::InvalidInput,
    ErrorKind::InvalidOutput,
    ErrorKind::ForbiddenAddress,
    ErrorKind::ResponseTooLarge,
    ErrorKind::ScriptError,
    ErrorKind::ScriptTimeout,
    ErrorKind::ScriptMemory,
    ErrorKind::NotFound,
];

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed connector call: what went wrong, its classification, and for HTTP failures the
/// status and how long the provider asked to wait.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub kind: ErrorKind,
    pub message: String,
    /// The upstream status, for HTTP failures.
    pub status: Option<u16>,
    /// How long the provider asked to wait (`Retry-After`, `RateLimit`).
    pub retry_after: Option<Duration>,
}

impl CallError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after = delay;
        self
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<CallError> for ActivityError {
    fn from(err: CallError) -> Self {
        let base = match err.kind.is_retryable() {
            true => ActivityError::retryable(&err.message),
            false => ActivityError::terminal(&err.message),
        };
        let base = base.with_kind(err.kind.as_str());
        match err.retry_after {
            Some(delay) => base.retry_after(delay),
            None => base,
        }
    }
}
