//! The workflow that the tests' cron schedules start.

use durable::prelude::*;

/// Returns its input and the workflow id its schedule gave it (`schedule:<name>:<tick>`).
#[durable::workflow]
pub async fn scheduled(ctx: &WorkflowCtx, note: String) -> Result<String, WorkflowError> {
    Ok(format!("{note} {}", ctx.workflow_id()))
}
