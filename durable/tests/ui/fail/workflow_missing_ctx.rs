use durable::prelude::*;

#[durable::workflow]
async fn checkout(amount: u64) -> Result<u64, WorkflowError> {
    Ok(amount)
}

fn main() {}
