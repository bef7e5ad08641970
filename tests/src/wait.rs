//! Waiting for a condition with a deadline, instead of sleeping for a guessed time.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 25 ms until it returns `Some`, or panics after `deadline` saying
/// what was awaited.
pub async fn until<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
