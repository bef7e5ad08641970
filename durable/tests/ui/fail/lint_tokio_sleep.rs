use std::time::Duration;

use durable::prelude::*;

#[durable::workflow]
async fn wait_a_bit(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
    let _ = ctx;
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

fn main() {}
