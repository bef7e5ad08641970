//! Workflows that respond to cancellation: they clean up with an activity before they end.

use std::time::Duration;

use durable::prelude::*;

use crate::workflows::effect;

/// Returns what it is given: a step that leaves a trace in the history.
#[durable::activity]
pub async fn note(_ctx: &ActivityCtx, what: &str) -> Result<String, ActivityError> {
    Ok(what.to_owned())
}

/// Notes that it started, sleeps `millis`, and returns; cancelled, it notes `cleanup` before
/// it ends cancelled.
#[durable::workflow]
pub async fn tidy_sleeper(ctx: &WorkflowCtx, millis: u64) -> Result<String, WorkflowError> {
    note(ctx, "started").await?;
    match ctx.sleep(Duration::from_millis(millis)).await {
        Err(err) if err.is_cancelled() => {
            note(ctx, "cleanup").await?;
            Err(err)
        }
        other => other.map(|()| "slept".to_owned()),
    }
}

/// Works in an activity until it is told the run was asked to cancel (or a minute passes),
/// then tries another step, which learns of the cancellation.
#[durable::workflow]
pub async fn busy(ctx: &WorkflowCtx) -> Result<String, WorkflowError> {
    ctx.set_event("stage", &"working").await?;
    let how = work_until_cancelled(ctx).await?;
    note(ctx, "after the work").await?;
    Ok(how)
}

/// Waits for the cancellation of its run, for at most a minute.
#[durable::activity]
pub async fn work_until_cancelled(ctx: &ActivityCtx) -> Result<String, ActivityError> {
    // The minute is a bound, not a wait for something: a cancellation that never arrives
    // shows as "worked a minute" in the test's assertion instead of hanging it.
    tokio::select! {
        _ = ctx.cancelled() => Ok("stopped when asked".to_owned()),
        _ = tokio::time::sleep(Duration::from_secs(60)) => Ok("worked a minute".to_owned()),
    }
}

/// Sleeps an hour; cancelled, it cleans up with a ledger [`effect`] whose first execution
/// blocks until the test releases it.
#[durable::workflow]
pub async fn tidy_with_effect(ctx: &WorkflowCtx, ledger: String) -> Result<(), WorkflowError> {
    match ctx.sleep(Duration::from_secs(3600)).await {
        Err(err) if err.is_cancelled() => {
            effect(ctx, &ledger, true).await?;
            Err(err)
        }
        other => other,
    }
}
