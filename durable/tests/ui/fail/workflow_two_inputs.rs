use durable::prelude::*;

#[durable::workflow]
async fn checkout(ctx: &WorkflowCtx, amount: u64, note: String) -> Result<u64, WorkflowError> {
    let _ = (ctx, note);
    Ok(amount)
}

fn main() {}
