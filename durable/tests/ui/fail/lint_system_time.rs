use durable::prelude::*;

#[durable::workflow]
async fn stamp(ctx: &WorkflowCtx) -> Result<u64, WorkflowError> {
    let _ = ctx;
    let now = std::time::SystemTime::now();
    Ok(now.elapsed().map(|d| d.as_secs()).unwrap_or(0))
}

fn main() {}
