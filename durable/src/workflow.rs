//! The [`Workflow`] trait that `#[durable::workflow]` implements, and its type-erased form.

use std::fmt;
use std::marker::PhantomData;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{WorkflowCtx, WorkflowError};

/// A durable workflow. Implemented by `#[durable::workflow]` on an `async fn`, which becomes
/// a unit struct of the same name: pass that to `Client::start` and `Worker::register`.
pub trait Workflow: Send + Sync + 'static {
    /// The input, stored as JSON when the run starts.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The output, stored as JSON when the run completes.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The name runs are stored and claimed under.
    const NAME: &'static str;
    /// The version recorded on each run.
    const VERSION: u32 = 1;
    /// Claims in a row without progress before a run is parked (a poison run that kills its
    /// worker each time ends parked instead of looping).
    const MAX_ATTEMPTS: u32 = 5;

    /// Runs the workflow from the top; recorded steps replay instead of running again.
    fn run(
        ctx: WorkflowCtx,
        input: Self::Input,
    ) -> BoxFuture<'static, Result<Self::Output, WorkflowError>>;
}

/// A [`Workflow`] with JSON in and out, so workers can hold workflows of different types.
pub trait DynWorkflow: Send + Sync + fmt::Debug {
    /// The workflow's name.
    fn name(&self) -> &'static str;
    /// Decodes the input, runs the workflow and encodes its output.
    fn run(
        &self,
        ctx: WorkflowCtx,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, WorkflowError>>;
}

/// Wraps a [`Workflow`] as a [`DynWorkflow`].
pub fn erase<W: Workflow>(_workflow: W) -> Box<dyn DynWorkflow> {
    Box::new(Erased::<W>(PhantomData))
}

struct Erased<W>(PhantomData<fn() -> W>);

impl<W> fmt::Debug for Erased<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Workflow")
            .field(&std::any::type_name::<W>())
            .finish()
    }
}

impl<W: Workflow> DynWorkflow for Erased<W> {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn run(
        &self,
        ctx: WorkflowCtx,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, WorkflowError>> {
        Box::pin(async move {
            let input: W::Input = serde_json::from_value(input).map_err(|e| {
                WorkflowError::msg(format!(
                    "the stored input does not match the input type of workflow `{}`: {e}",
                    W::NAME
                ))
            })?;
            let output = W::run(ctx, input).await?;
            serde_json::to_value(output).map_err(|e| {
                WorkflowError::msg(format!("could not encode the output of `{}`: {e}", W::NAME))
            })
        })
    }
}
