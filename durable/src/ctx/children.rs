//! Child workflows: a workflow starts others and waits for their results, durably.
//!
//! A child's workflow id is derived from its parent's run and the step that started it, so
//! a replay or a retry after a crash finds the same child instead of starting another. When
//! a child finishes, its outcome is left for the parent as a message on `child:<run id>`,
//! in the transaction that finishes it; waiting for a child is a `recv` of that message.

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Halt, WorkflowCtx, new_record};
use crate::run::{StepKind, StepRecord, StepStatus};
use crate::store::{NewRun, StartedRun, Transition};
use crate::{Error, RunId, Workflow, WorkflowError};

/// Long enough to mean "until the child finishes".
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A child workflow started by [`WorkflowCtx::start_child`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildHandle<O> {
    run_id: RunId,
    _output: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned> ChildHandle<O> {
    /// The child's run.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Waits (durably) for the child to finish and returns its output. A child that failed or
    /// was cancelled is an error of the parent's, which it may handle.
    pub async fn result(&self, ctx: &WorkflowCtx) -> Result<O, WorkflowError> {
        let outcome: Option<Value> = ctx.recv(&self.topic(), FOREVER).await?;
        self.output(outcome.unwrap_or(Value::Null))
    }

    /// The topic the child's outcome arrives on.
    fn topic(&self) -> String {
        format!("child:{}", self.run_id)
    }

    /// The child's output from its outcome: `{"ok": output}`, `{"error": message}`, or a
    /// cancellation.
    fn output(&self, outcome: Value) -> Result<O, WorkflowError> {
        if let Some(output) = outcome.get("ok") {
            return serde_json::from_value(output.clone()).map_err(|e| {
                WorkflowError::msg(format!(
                    "the output of child run {} does not decode: {e}",
                    self.run_id
                ))
            });
        }
        match outcome.get("error").and_then(Value::as_str) {
            Some(error) => Err(WorkflowError::msg(format!(
                "child run {} failed: {error}",
                self.run_id
            ))),
            None => Err(WorkflowError::msg(format!(
                "child run {} was cancelled",
                self.run_id
            ))),
        }
    }
}

impl WorkflowCtx {
    /// Starts `workflow` as a child of this run and returns a handle to await its result.
    /// Start many, then await them, to fan out and join:
    ///
    /// ```rust,no_run
    /// # use durable::prelude::*;
    /// #[durable::workflow]
    /// async fn square(_ctx: &WorkflowCtx, x: u64) -> Result<u64, WorkflowError> {
    ///     Ok(x * x)
    /// }
    ///
    /// #[durable::workflow]
    /// async fn sum_of_squares(ctx: &WorkflowCtx, n: u64) -> Result<u64, WorkflowError> {
    ///     let mut children = Vec::new();
    ///     for x in 0..n {
    ///         children.push(ctx.start_child(square, x).await?);
    ///     }
    ///     let mut sum = 0;
    ///     for child in children {
    ///         sum += child.result(ctx).await?;
    ///     }
    ///     Ok(sum)
    /// }
    /// ```
    ///
    /// Cancelling this run cancels its children (and theirs).
    pub async fn start_child<W: Workflow>(
        &self,
        workflow: W,
        input: W::Input,
    ) -> Result<ChildHandle<W::Output>, WorkflowError> {
        let _ = workflow;
        let (seq, recorded) = self.begin_step(StepKind::StartChild, W::NAME).await?;
        if let Some(record) = recorded {
            let run_id = self.decode_output(&record).await?;
            return Ok(ChildHandle {
                run_id,
                _output: PhantomData,
            });
        }
        let child = NewRun {
            id: RunId::new(),
            workspace_id: self.workspace_id(),
            workflow_id: crate::workflow_id::child(self.run_id(), seq),
            workflow_name: W::NAME.to_owned(),
            workflow_version: W::VERSION,
            input: serde_json::to_value(input)?,
            max_claims: W::MAX_ATTEMPTS,
            parent_run_id: Some(self.run_id()),
            timeout: None,
        };
        // A start whose step was not recorded (a crash in between) finds the same child again.
        let started = self.start_run(child).await?;
        let record = StepRecord {
            output: Some(serde_json::to_value(started.id)?),
            ..new_record(seq, W::NAME, StepKind::StartChild, StepStatus::Completed)
        };
        self.write(vec![record], Transition::Continue).await?;
        Ok(ChildHandle {
            run_id: started.id,
            _output: PhantomData,
        })
    }

    /// Waits (durably) for the first of `children` to finish, for at most `timeout`, and
    /// returns its index and output; `None` when the time is up. Which child came first is
    /// recorded, so a replay takes the same branch. The others run on: await them later with
    /// [`ChildHandle::result`], or cancel them.
    ///
    /// ```rust,no_run
    /// # use durable::prelude::*;
    /// # use std::time::Duration;
    /// #[durable::workflow]
    /// async fn quote(_ctx: &WorkflowCtx, carrier: String) -> Result<u64, WorkflowError> {
    ///     Ok(carrier.len() as u64 * 100)
    /// }
    ///
    /// #[durable::workflow]
    /// async fn fastest_quote(ctx: &WorkflowCtx, _order: String) -> Result<String, WorkflowError> {
    ///     let mut asked = Vec::new();
    ///     for carrier in ["ups", "fedex", "dhl"] {
    ///         asked.push(ctx.start_child(quote, carrier.to_owned()).await?);
    ///     }
    ///     Ok(match ctx.first_of(&asked, Duration::from_secs(60)).await? {
    ///         Some((i, price)) => format!("carrier {i} first, at {price}"),
    ///         None => "no quote within a minute".to_owned(),
    ///     })
    /// }
    /// ```
    pub async fn first_of<O: DeserializeOwned>(
        &self,
        children: &[ChildHandle<O>],
        timeout: Duration,
    ) -> Result<Option<(usize, O)>, WorkflowError> {
        let topics: Vec<String> = children.iter().map(ChildHandle::topic).collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let Some(first) = self.recv_any(&names, timeout).await? else {
            return Ok(None);
        };
        let index = topics
            .iter()
            .position(|t| t == first.topic())
            .ok_or_else(|| WorkflowError::msg("a child outcome arrived for no child waited on"))?;
        let output = children[index].output(first.payload().clone())?;
        Ok(Some((index, output)))
    }

    /// Starts `workflow` as a child and waits for its result.
    pub async fn child<W: Workflow>(
        &self,
        workflow: W,
        input: W::Input,
    ) -> Result<W::Output, WorkflowError> {
        self.start_child(workflow, input).await?.result(self).await
    }

    /// Starts a run, retrying transient database errors; halts the run if they persist.
    async fn start_run(&self, child: NewRun) -> Result<StartedRun, WorkflowError> {
        let mut backoff = Duration::from_millis(20);
        loop {
            match self.store().start_run(child.clone()).await {
                Ok(started) => return Ok(started),
                Err(e @ Error::Database { .. }) if backoff < Duration::from_secs(2) => {
                    tracing::warn!(error = %e, "starting a child failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "starting a child failed; abandoning the run here");
                    self.halt(Halt::LeaseLost);
                    return Err(WorkflowError::halted());
                }
            }
        }
    }
}
