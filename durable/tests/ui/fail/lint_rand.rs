#![allow(deprecated)] // `thread_rng` is deprecated in rand 0.9; this case is about the macro error only.

use durable::prelude::*;
use rand::Rng;
use rand::thread_rng;

#[durable::workflow]
async fn lottery(ctx: &WorkflowCtx) -> Result<u64, WorkflowError> {
    let _ = ctx;
    let a: u64 = rand::random();
    let b: u64 = thread_rng().random();
    Ok(a + b)
}

fn main() {}
