use durable::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub amount: u64,
    pub note: String,
}

/// Charges the card. The default retry policy applies.
#[durable::activity]
pub async fn charge(ctx: &ActivityCtx, amount: u64, note: &str) -> Result<String, ActivityError> {
    // Activities may read the clock: that is what they are for.
    let _at = std::time::SystemTime::now();
    Ok(format!("{}-{amount}-{note}", ctx.idempotency_key()))
}

#[durable::activity(
    name = "ship",
    retry(
        max_attempts = 5,
        initial = "100ms",
        backoff = 2.0,
        max = "10s",
        max_duration = "1m",
        jitter = 0.2,
        non_retryable = ["card_declined", "address_invalid"],
        on_exhausted = "pause"
    )
)]
async fn ship(_ctx: &ActivityCtx, mut parcel: Vec<String>, express: bool) -> Result<usize, ActivityError> {
    if express {
        parcel.push("express".to_owned());
    }
    Ok(parcel.len())
}

#[durable::activity(retry(on_exhausted = fail, backoff = 3))]
async fn notify(_ctx: &ActivityCtx) -> Result<(), ActivityError> {
    Ok(())
}

#[durable::workflow]
async fn checkout(ctx: &WorkflowCtx, order: Order) -> Result<String, WorkflowError> {
    let receipt = charge(ctx, order.amount, &order.note).await?;
    let _count = ship(ctx, vec![receipt.clone()], true).await?;
    notify(ctx).await?;
    Ok(receipt)
}

fn main() {
    let _ = checkout;
}
