//! The `connector.action` workflow: one connector action as a durable run, so an action can
//! be started through the API (and a flow's action node runs the same way, as a step).

use std::sync::Arc;

use durable::runtime::DynWorkflow;
use durable::{
    ActivityError, ActivityOptions, RetryPolicy, WorkflowCtx, WorkflowError, WorkflowSpec,
};
use futures::future::BoxFuture;
use serde_json::Value;

use crate::runtime::{ActionRequest, Connectors};

/// The name runs of one connector action are started under.
pub const ACTION_WORKFLOW: &str = "connector.action";

/// Runs `request` as one durable activity of the workflow `ctx`: its idempotency key is the
/// step's, retried with `retry`; a provider's `Retry-After` overrides the backoff.
pub async fn run_action(
    ctx: &WorkflowCtx,
    connectors: &Arc<Connectors>,
    request: &ActionRequest,
    retry: RetryPolicy,
) -> Result<Value, ActivityError> {
    let options = ActivityOptions::new(request.step_name()).retry(retry);
    ctx.activity(options, |actx| {
        let connectors = connectors.clone();
        let request = request.clone();
        async move { Ok(connectors.call(&request, &(&actx).into()).await?) }
    })
    .await
}

/// The `connector.action` workflow, holding the process's connectors.
#[derive(Debug, Clone)]
pub struct ActionWorkflow {
    connectors: Arc<Connectors>,
}

impl ActionWorkflow {
    pub fn new(connectors: Arc<Connectors>) -> Self {
        Self { connectors }
    }

    /// What a client needs to start it.
    pub fn spec() -> WorkflowSpec {
        WorkflowSpec {
            name: ACTION_WORKFLOW.to_owned(),
            version: 1,
            max_attempts: 5,
        }
    }
}

impl DynWorkflow for ActionWorkflow {
    fn name(&self) -> &'static str {
        ACTION_WORKFLOW
    }

    fn run(
        &self,
        ctx: WorkflowCtx,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, WorkflowError>> {
        let connectors = self.connectors.clone();
        Box::pin(async move {
            let request: ActionRequest = serde_json::from_value(input).map_err(|e| {
                WorkflowError::msg(format!(
                    "the input of `{ACTION_WORKFLOW}` is not an action request: {e}"
                ))
            })?;
            Ok(run_action(&ctx, &connectors, &request, RetryPolicy::default()).await?)
        })
    }
}
