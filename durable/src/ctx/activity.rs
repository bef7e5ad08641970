//! Running activities: replay, attempts, retries with durable backoff, exhaustion.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::{WorkflowCtx, new_record};
use crate::retry::OnExhausted;
use crate::run::{StepKind, StepRecord, StepStatus};
use crate::store::Transition;
use crate::{ActivityCtx, ActivityError, ActivityOptions};

/// What is known of a step's earlier attempts.
#[derive(Debug, Default)]
struct Attempts {
    made: u32,
    first_at: Option<DateTime<Utc>>,
    next_due: Option<DateTime<Utc>>,
    /// For a backoff decided by this execution: when it ends by the monotonic clock.
    not_before: Option<Instant>,
}

/// How an attempt ended, when the step goes on.
enum AttemptOutcome<T> {
    Done(T),
    RetryAt {
        due: DateTime<Utc>,
        not_before: Instant,
    },
}

/// What to do after a failed attempt.
enum Decision {
    RetryAfter(Duration),
    GiveUp(&'static str),
}

impl WorkflowCtx {
    /// Runs `run` as a durable activity step: what `#[durable::activity]` expands to, for
    /// activities chosen at run time (a connector action named by data, say). The step is
    /// recorded under `options`' name, which must be the same at this point on every replay.
    ///
    /// ```rust,no_run
    /// # use durable::prelude::*;
    /// # async fn example(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
    /// let options = durable::ActivityOptions::new("notes.create_note");
    /// let id: String = ctx
    ///     .activity(options, |actx| async move { Ok(format!("note for {}", actx.idempotency_key())) })
    ///     .await?;
    /// # let _ = id;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn activity<T, F, Fut>(
        &self,
        options: ActivityOptions,
        run: F,
    ) -> Result<T, ActivityError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(ActivityCtx) -> Fut,
        Fut: Future<Output = Result<T, ActivityError>>,
    {
        self.__activity(options, run).await
    }

    /// Runs an activity as a durable step. Called by code that `#[durable::activity]`
    /// generates; use the macro rather than calling this directly.
    #[doc(hidden)]
    pub async fn __activity<T, F, Fut>(
        &self,
        options: ActivityOptions,
        run: F,
    ) -> Result<T, ActivityError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(ActivityCtx) -> Fut,
        Fut: Future<Output = Result<T, ActivityError>>,
    {
        let (seq, recorded) = self
            .begin_step(StepKind::Activity, &options.name)
            .await
            .map_err(ActivityError::stopped_by)?;
        let mut attempts = match recorded {
            Some(record) => match record.status {
                StepStatus::Completed => {
                    return self
                        .decode_output(&record)
                        .await
                        .map_err(|_| ActivityError::halted());
                }
                StepStatus::Failed => return Err(recorded_error(&record)),
                // Only `recv` steps wait, and a name mismatch parks before this point.
                StepStatus::Waiting => return Err(recorded_error(&record)),
                StepStatus::Retrying => Attempts {
                    made: record.attempts,
                    first_at: record.first_attempt_at,
                    next_due: record.wake_at,
                    not_before: None,
                },
            },
            None => Attempts::default(),
        };
        loop {
            if let Some(due) = attempts.next_due.take() {
                self.wait_until(seq, due, attempts.not_before.take())
                    .await
                    .map_err(ActivityError::stopped_by)?;
            }
            let attempt = attempts.made + 1;
            let started_at = self.inner.clock.now();
            let first_at = *attempts.first_at.get_or_insert(started_at);
            let span = tracing::info_span!("step", seq, name = %options.name, attempt);
            let outcome = self
                .attempt(seq, &options, attempt, first_at, &run)
                .instrument(span)
                .await?;
            match outcome {
                AttemptOutcome::Done(value) => return Ok(value),
                AttemptOutcome::RetryAt { due, not_before } => {
                    attempts = Attempts {
                        made: attempt,
                        first_at: Some(first_at),
                        next_due: Some(due),
                        not_before: Some(not_before),
                    };
                }
            }
        }
    }

    /// Runs one attempt and records its outcome.
    async fn attempt<T, F, Fut>(
        &self,
        seq: u32,
        options: &ActivityOptions,
        attempt: u32,
        first_at: DateTime<Utc>,
        run: &F,
    ) -> Result<AttemptOutcome<T>, ActivityError>
    where
        T: Serialize,
        F: Fn(ActivityCtx) -> Fut,
        Fut: Future<Output = Result<T, ActivityError>>,
    {
        fault_point!("activity.before");
        let err = match run(self.activity_ctx(seq, &options.name, attempt)).await {
            Ok(value) => {
                fault_point!("activity.after");
                return self
                    .record_success(seq, options, attempt, first_at, value)
                    .await
                    .map(AttemptOutcome::Done);
            }
            Err(err) if err.is_halted() => return Err(err),
            Err(err) => err,
        };
        tracing::warn!(event = "step_failed", error = %err, retryable = err.is_retryable(), "step failed");
        let delay = match decide(options, attempt, first_at, self.inner.clock.now(), &err) {
            Decision::RetryAfter(delay) => delay,
            Decision::GiveUp(why) => {
                return self
                    .give_up(seq, options, attempt, first_at, err, why)
                    .await;
            }
        };
        let due = self.inner.clock.now() + delay;
        let not_before = Instant::now() + delay;
        let record = attempt_record(seq, &options.name, attempt, first_at, &err)
            .with_status(StepStatus::Retrying, Some(due));
        // A long backoff becomes a durable timer in the same write.
        let suspend = delay > self.inner.settings.inline_wait;
        let transition = match suspend {
            true => Transition::Sleep { wake_at: due },
            false => Transition::Continue,
        };
        self.write(vec![record], transition)
            .await
            .map_err(|_| ActivityError::halted())?;
        if suspend {
            self.halt(super::Halt::Suspended { wake_at: due });
            return Err(ActivityError::halted());
        }
        Ok(AttemptOutcome::RetryAt { due, not_before })
    }

    fn activity_ctx(&self, seq: u32, name: &str, attempt: u32) -> ActivityCtx {
        let run = self.run();
        ActivityCtx {
            run_id: run.id,
            workspace_id: run.workspace_id,
            workflow_id: run.workflow_id.clone(),
            workflow_name: run.workflow_name.clone(),
            seq,
            name: name.to_owned(),
            attempt,
            idempotency_key: format!("{}-{seq}", run.id),
            // Once the workflow knows it is cancelled, its cleanup activities are not told
            // again; they stop only if the lease is lost.
            cancel: match self.cancel_delivered() {
                true => self.inner.cancel.child_token(),
                false => self.inner.signal.token().child_token(),
            },
        }
    }

    async fn record_success<T: Serialize>(
        &self,
        seq: u32,
        options: &ActivityOptions,
        attempt: u32,
        first_at: DateTime<Utc>,
        value: T,
    ) -> Result<T, ActivityError> {
        let output = serde_json::to_value(&value).map_err(|e| {
            ActivityError::terminal(format!(
                "could not encode the result of `{}`: {e}",
                options.name
            ))
        })?;
        let record = StepRecord {
            output: Some(output),
            attempts: attempt,
            first_attempt_at: Some(first_at),
            ..new_record(
                seq,
                &options.name,
                StepKind::Activity,
                StepStatus::Completed,
            )
        };
        self.write(vec![record], Transition::Continue)
            .await
            .map_err(|_| ActivityError::halted())?;
        tracing::info!(event = "step_succeeded", "step succeeded");
        Ok(value)
    }

    /// Out of attempts (or a terminal error): fail the step, or park the run.
    async fn give_up<T>(
        &self,
        seq: u32,
        options: &ActivityOptions,
        attempt: u32,
        first_at: DateTime<Utc>,
        err: ActivityError,
        why: &'static str,
    ) -> Result<T, ActivityError> {
        let record = attempt_record(seq, &options.name, attempt, first_at, &err);
        let pause = options.retry.on_exhausted == OnExhausted::Pause && err.is_retryable();
        if pause {
            let reason = format!(
                "activity `{}` (step {seq}) {why} after {attempt} attempt(s); last error: {err}",
                options.name
            );
            let record = record.with_status(StepStatus::Retrying, None);
            if self
                .write(
                    vec![record],
                    Transition::Park {
                        reason: reason.clone(),
                    },
                )
                .await
                .is_ok()
            {
                self.halt(super::Halt::Parked { reason });
            }
            return Err(ActivityError::halted());
        }
        let record = record.with_status(StepStatus::Failed, None);
        self.write(vec![record], Transition::Continue)
            .await
            .map_err(|_| ActivityError::halted())?;
        Err(err.into_terminal())
    }
}

fn decide(
    options: &ActivityOptions,
    attempt: u32,
    first_at: DateTime<Utc>,
    now: DateTime<Utc>,
    err: &ActivityError,
) -> Decision {
    let policy = &options.retry;
    if !err.is_retryable() || !policy.allows_kind(err.kind()) {
        return Decision::GiveUp("failed with a terminal error");
    }
    if attempt >= policy.max_attempts {
        return Decision::GiveUp("ran out of attempts");
    }
    let delay = err
        .retry_after_hint()
        .unwrap_or_else(|| policy.delay(attempt));
    if let Some(limit) = policy.max_duration {
        let elapsed = (now - first_at).to_std().unwrap_or_default();
        if elapsed + delay > limit {
            return Decision::GiveUp("ran past its max_duration");
        }
    }
    Decision::RetryAfter(delay)
}

fn attempt_record(
    seq: u32,
    name: &str,
    attempt: u32,
    first_at: DateTime<Utc>,
    err: &ActivityError,
) -> StepRecord {
    StepRecord {
        error: serde_json::to_value(err).ok(),
        attempts: attempt,
        first_attempt_at: Some(first_at),
        ..new_record(seq, name, StepKind::Activity, StepStatus::Failed)
    }
}

fn recorded_error(record: &StepRecord) -> ActivityError {
    record
        .error
        .clone()
        .and_then(|e| serde_json::from_value::<ActivityError>(e).ok())
        .unwrap_or_else(|| ActivityError::terminal(format!("activity `{}` failed", record.name)))
        .into_terminal()
}

impl StepRecord {
    fn with_status(mut self, status: StepStatus, wake_at: Option<DateTime<Utc>>) -> Self {
        self.status = status;
        self.wake_at = wake_at;
        self
    }
}
