use durable::prelude::*;

#[durable::workflow(name = "checkout", retries = 3, version = "2")]
async fn checkout(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
    let _ = ctx;
    Ok(())
}

fn main() {}
