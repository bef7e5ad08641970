use durable::prelude::*;

#[durable::activity(retry(on_exhausted = "retry_forever"))]
async fn charge(ctx: &ActivityCtx, amount: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(amount)
}

fn main() {}
