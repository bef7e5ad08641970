use durable::prelude::*;

#[durable::workflow]
async fn fan_out(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
    let _ = ctx;
    let _task = tokio::spawn(async {});
    Ok(())
}

fn main() {}
