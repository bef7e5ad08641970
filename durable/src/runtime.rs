//! Executing claimed runs: the part of the engine a worker pool drives.
//!
//! `durable-worker` is the pool; this module runs one claimed run to its next stop.
//! [`replay_check`] replays finished runs against the current code, before a deploy.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::store::{ClaimedRun, Store, Transition};
use crate::{WorkflowCtx, WorkflowError};

pub use crate::ctx::{CancelSignal, ExecutionSettings, Halt};
pub use crate::workflow::{DynWorkflow, erase};
pub use replay::{Divergence, Mismatch, ReplayReport, StepRef, replay_check, replay_check_in};

mod replay;

/// Where a run stopped on this worker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// Completed; the output is recorded.
    Completed,
    /// Failed; the error is recorded.
    Failed(String),
    /// Ended on the cancellation it was asked for, for this reason.
    Cancelled(String),
    /// Stopped before finishing.
    Halted(Halt),
}

/// Runs a claimed run until it completes, fails, suspends, parks, or loses its lease.
///
/// Cancelling `cancel` (the worker saw its lease lost) drops the workflow at its next await:
/// nothing more is recorded, and whoever holds the lease now carries on from the history.
/// Through `signal`, made from `cancel`, the worker tells the run it was asked to cancel.
pub async fn execute(
    store: Arc<dyn Store>,
    workflow: &dyn DynWorkflow,
    claimed: ClaimedRun,
    settings: ExecutionSettings,
    cancel: CancellationToken,
    signal: CancelSignal,
) -> Outcome {
    let info = &claimed.info;
    let span = tracing::info_span!(
        "run",
        workspace = %info.workspace_id,
        workflow = %info.workflow_name,
        run_id = %info.id,
        attempt = info.claims,
    );
    fault_point!("run.claimed");
    let input = info.input.clone();
    let replayed = claimed.history.len();
    let ctx = WorkflowCtx::new(store, claimed, settings, cancel.clone(), signal);
    async move {
        tracing::info!(
            event = "run_started",
            replayed_steps = replayed,
            "run started"
        );
        let result = tokio::select! {
            result = workflow.run(ctx.clone(), input) => result,
            _ = cancel.cancelled() => {
                ctx.halt(Halt::LeaseLost);
                Err(WorkflowError::halted())
            }
        };
        let outcome = finish(&ctx, result).await;
        log_outcome(&outcome);
        outcome
    }
    .instrument(span)
    .await
}

/// Records how the workflow function ended, unless the run already halted.
async fn finish(ctx: &WorkflowCtx, result: Result<serde_json::Value, WorkflowError>) -> Outcome {
    if let Some(halt) = ctx.halted() {
        return Outcome::Halted(halt);
    }
    if matches!(&result, Err(e) if e.is_halted()) {
        // The workflow passed on a halt it caused without our knowing why: record nothing.
        return Outcome::Halted(Halt::LeaseLost);
    }
    if let Some(step) = ctx.unreplayed_step() {
        let reason = format!(
            "non-determinism: the workflow finished, but the history records {} `{}` at \
             step {}; the code changed while this run was in flight",
            step.kind, step.name, step.seq
        );
        ctx.park(reason).await;
        return Outcome::Halted(ctx.halted().unwrap_or(Halt::LeaseLost));
    }
    let (transition, outcome) = match result {
        Ok(output) => (Transition::Complete { output }, Outcome::Completed),
        Err(err) if err.is_cancelled() => {
            let reason = err.message().to_owned();
            (
                Transition::Cancel {
                    reason: reason.clone(),
                },
                Outcome::Cancelled(reason),
            )
        }
        Err(err) => {
            let error = err.message().to_owned();
            (
                Transition::Fail {
                    error: error.clone(),
                },
                Outcome::Failed(error),
            )
        }
    };
    if let Outcome::Cancelled(reason) = &outcome {
        ctx.cancel_children(reason).await;
    }
    fault_point!("run.before-finish");
    match ctx.write(Vec::new(), transition).await {
        Ok(()) => outcome,
        Err(_) => Outcome::Halted(Halt::LeaseLost),
    }
}

fn log_outcome(outcome: &Outcome) {
    match outcome {
        Outcome::Completed => tracing::info!(event = "run_completed", "run completed"),
        Outcome::Cancelled(reason) => {
            tracing::info!(event = "run_cancelled", reason = %reason, "run cancelled")
        }
        Outcome::Failed(error) => {
            tracing::warn!(event = "run_failed", error = %error, "run failed")
        }
        Outcome::Halted(Halt::Suspended { wake_at }) => {
            tracing::info!(event = "run_suspended", %wake_at, "run suspended until a timer")
        }
        Outcome::Halted(Halt::Parked { reason }) => {
            tracing::error!(event = "run_parked", reason = %reason, "run parked")
        }
        Outcome::Halted(Halt::LeaseLost) => {
            tracing::warn!(
                event = "lease_lost",
                "lease lost; another worker or a cancel owns the run"
            )
        }
    }
}
