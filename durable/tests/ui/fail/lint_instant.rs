use std::time::Instant;

use durable::prelude::*;

#[durable::workflow]
async fn timed(ctx: &WorkflowCtx) -> Result<u128, WorkflowError> {
    let _ = ctx;
    let started = Instant::now();
    Ok(started.elapsed().as_millis())
}

fn main() {}
