//! Versioning: `ctx.patched` lets changed code keep replaying runs recorded before the change,
//! and the replay-only mode lets [`replay_check`](crate::runtime::replay_check) replay a
//! history against the current code without running or recording anything.

use std::collections::HashMap;

use super::{Halt, WorkflowCtx, new_record};
use crate::WorkflowError;
use crate::run::{StepKind, StepStatus};
use crate::runtime::{Mismatch, StepRef};

/// What versioning has decided in one execution of a run.
#[derive(Debug, Default)]
pub(super) struct Versioning {
    /// The answer given for each change id: a later call with the same id repeats it.
    patches: HashMap<String, bool>,
    /// Set for a replay check: a step the history does not have as asked for diverges.
    replay_only: bool,
    /// The first divergence a replay check met.
    divergence: Option<Mismatch>,
}

impl WorkflowCtx {
    /// Whether this run takes the code path added by the change `change_id`.
    ///
    /// Changing a workflow under runs in flight would make their replay diverge from their
    /// history (and park them). Branch on `patched` instead: runs recorded before the change
    /// replay the old path, and every other run takes the new one.
    ///
    /// ```rust,no_run
    /// use durable::prelude::*;
    ///
    /// #[durable::activity]
    /// async fn charge(_ctx: &ActivityCtx, cents: u64) -> Result<String, ActivityError> {
    ///     Ok(format!("charged {cents}"))
    /// }
    ///
    /// #[durable::activity]
    /// async fn charge_with_3ds(_ctx: &ActivityCtx, cents: u64) -> Result<String, ActivityError> {
    ///     Ok(format!("charged {cents} with 3-D Secure"))
    /// }
    ///
    /// #[durable::workflow]
    /// async fn checkout(ctx: &WorkflowCtx, cents: u64) -> Result<String, WorkflowError> {
    ///     if ctx.patched("charge-with-3ds").await? {
    ///         // New code: runs that reach this point after the deploy.
    ///         Ok(charge_with_3ds(ctx, cents).await?)
    ///     } else {
    ///         // Old code: runs that recorded `charge` here before the deploy.
    ///         Ok(charge(ctx, cents).await?)
    ///     }
    /// }
    /// ```
    ///
    /// How the answer is found, at the run's next sequence number:
    /// - no record there (the run is past its history): a `patch` marker named `change_id`
    ///   is recorded (it rides along with the next checkpoint) and the answer is true;
    /// - the history has this marker there: the run took the new path before; true;
    /// - the history has another step there: the run was recorded by code without the change;
    ///   false, and no sequence number is taken, so the old path replays as recorded.
    ///
    /// A later call with the same id in the same run returns the same answer. Under a
    /// [replay check](crate::runtime::replay_check) the history is that of a finished run,
    /// so a marker missing after its last step means false.
    ///
    /// Once no run that took the old path can replay any more, delete the old branch but keep
    /// the call (ignoring its answer) for as long as runs that recorded the marker can: their
    /// history has it at that position.
    pub async fn patched(&self, change_id: &str) -> Result<bool, WorkflowError> {
        let mut state = self.state();
        if state.halt.is_some() {
            return Err(WorkflowError::halted());
        }
        if let Some(&answer) = state.versioning.patches.get(change_id) {
            return Ok(answer);
        }
        let seq = state.next_seq;
        let recorded = self.inner.history.get(&seq);
        let answer = match recorded {
            Some(record) => record.kind == StepKind::Patch && record.name == change_id,
            None => !state.versioning.replay_only,
        };
        if answer {
            state.next_seq += 1;
        }
        if answer && recorded.is_none() {
            let marker = new_record(seq, change_id, StepKind::Patch, StepStatus::Completed);
            state.pending.push(marker);
        }
        state
            .versioning
            .patches
            .insert(change_id.to_owned(), answer);
        Ok(answer)
    }

    /// In replay-only mode, halts at a step the history does not have, has under another
    /// name or kind, or has unfinished (which would run it again); records why.
    pub(super) fn replay_guard(
        &self,
        seq: u32,
        kind: StepKind,
        name: &str,
    ) -> Result<(), WorkflowError> {
        let mut state = self.state();
        if !state.versioning.replay_only {
            return Ok(());
        }
        let asked = StepRef::new(kind, name);
        let mismatch = match self.inner.history.get(&seq) {
            None => Mismatch::NewStep { seq, asked },
            // where the workflow learned it was cancelled: replayed as such
            Some(record) if record.kind == StepKind::Cancel => return Ok(()),
            Some(record) if record.kind != kind || record.name != name => Mismatch::Step {
                seq,
                recorded: StepRef::new(record.kind, &record.name),
                asked,
            },
            Some(record) if matches!(record.status, StepStatus::Retrying | StepStatus::Waiting) => {
                Mismatch::Stopped {
                    seq: Some(seq),
                    reason: format!(
                        "the history records {asked} unfinished ({}); replaying it would run it",
                        record.status
                    ),
                }
            }
            Some(_) => return Ok(()),
        };
        state.halt.get_or_insert(Halt::Parked {
            reason: mismatch.to_string(),
        });
        state.versioning.divergence.get_or_insert(mismatch);
        Err(WorkflowError::halted())
    }

    /// Switches the context to replay-only mode, for a replay check.
    pub(crate) fn enter_replay_only(&self) {
        self.state().versioning.replay_only = true;
    }

    /// The first divergence a replay check met, if any.
    pub(crate) fn take_divergence(&self) -> Option<Mismatch> {
        self.state().versioning.divergence.take()
    }
}
