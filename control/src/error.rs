//! The control plane's errors: each says what a caller can do about it.

/// Errors of the control plane.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed or refused a statement; the cause is kept.
    #[error(transparent)]
    Database(#[from] durable::Error),
    /// A unique name is taken (flow name, tenant slug).
    #[error("{0}")]
    Conflict(String),
    /// The row is immutable (a published flow version).
    #[error("{0}")]
    Immutable(String),
    /// The request names something that does not exist, or is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The actor may not do this (a key revoking a key more powerful than itself).
    #[error("{0}")]
    Forbidden(String),
    /// The change would leave the workspace without a way back in (its last owner, its last
    /// key able to manage keys and members).
    #[error("{0}")]
    LastAdmin(String),
}

/// Result of the control plane.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stored value that does not make sense (a bad UUID, time or enum name).
pub(crate) fn corrupt(what: impl Into<String>) -> Error {
    Error::Database(durable::Error::database(what.into()))
}
