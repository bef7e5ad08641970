use durable::prelude::*;

#[durable::workflow]
fn checkout(ctx: &WorkflowCtx, amount: u64) -> Result<u64, WorkflowError> {
    let _ = ctx;
    Ok(amount)
}

fn main() {}
