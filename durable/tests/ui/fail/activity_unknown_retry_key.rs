use durable::prelude::*;

#[durable::activity(retry(max_attempts = 3, max_retries = 5))]
async fn charge(ctx: &ActivityCtx, amount: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(amount)
}

fn main() {}
