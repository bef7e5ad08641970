use durable::prelude::*;

#[durable::activity(retry(initial = "5 parsecs"))]
async fn charge(ctx: &ActivityCtx, amount: u64) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(amount)
}

fn main() {}
