//! What a request that got no complete response means: the guard's own refusals stay
//! terminal, time runs out as `Timeout`, and the network failing (refused, reset, TLS, a body
//! cut short) as `Connection`.

use std::error::Error as StdError;
use std::time::Duration;

use super::guard::Refusal;
use crate::error::{CallError, ErrorKind};

/// The error for a reqwest failure talking to `host`. Messages are built here rather than
/// taken from reqwest, whose own quote the whole URL, query string (and any key in it)
/// included.
pub(crate) fn failure(err: reqwest::Error, host: &str) -> CallError {
    if let Some(refusal) = Refusal::find(&err) {
        return CallError::new(refusal.kind, refusal.message.clone());
    }
    let err = err.without_url();
    let cause = root_cause(&err);
    if err.is_timeout() {
        return CallError::new(
            ErrorKind::Timeout,
            format!("{host} did not answer in time: {cause}"),
        );
    }
    if err.is_builder() {
        return CallError::new(
            ErrorKind::Rejected,
            format!("the request to {host} is not valid: {cause}"),
        );
    }
    if err.is_redirect() {
        return CallError::new(
            ErrorKind::Rejected,
            format!("{host} sent a redirect that cannot be followed: {cause}"),
        );
    }
    CallError::new(
        ErrorKind::Connection,
        format!("could not reach {host}: {cause}"),
    )
}

/// The error when the whole request ran past `limit`.
pub(crate) fn timed_out(host: &str, limit: Duration) -> CallError {
    CallError::new(
        ErrorKind::Timeout,
        format!(
            "{host} did not answer within {}",
            humantime::format_duration(limit)
        ),
    )
}

/// The deepest error in the chain: the one that says what actually happened ("connection
/// refused", "invalid peer certificate") under reqwest's and hyper's generic wrappers.
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut deepest = err;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    deepest.to_string()
}
