use durable::prelude::*;

#[durable::activity]
async fn charge(ctx: &ActivityCtx, (amount, fee): (u64, u64)) -> Result<u64, ActivityError> {
    let _ = ctx;
    Ok(amount + fee)
}

fn main() {}
