//! A checkout workflow: reserve stock, charge the card, wait, send the receipt.
//!
//! ```text
//! cargo run --example checkout                 # embedded store: ./durable.db
//! DATABASE_URL=postgres://… cargo run --example checkout
//! cargo run --example checkout -- order-7      # another order id
//! ```
//!
//! Stop it (Ctrl-C, or `kill -9`) while it waits and run it again: the same run resumes.
//! Steps that finished are replayed from the store (`↺`), not run again (`▶`).

use std::time::Duration;

use anyhow::Context;
use durable::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Order {
    id: String,
    sku: String,
    amount_cents: u64,
}

#[durable::activity]
async fn reserve_stock(ctx: &ActivityCtx, sku: &str) -> Result<String, ActivityError> {
    println!("  ▶ reserve_stock({sku})  attempt {}", ctx.attempt());
    Ok(format!("reservation-{sku}"))
}

/// The payment provider is flaky: the first attempt of every charge times out. The retry
/// sends the same idempotency key, so a provider that honours it charges once.
#[durable::activity(retry(max_attempts = 5, initial = "200ms", backoff = 2.0, max = "10s"))]
async fn charge(ctx: &ActivityCtx, amount_cents: u64) -> Result<String, ActivityError> {
    println!(
        "  ▶ charge({amount_cents})  attempt {}  idempotency key {}",
        ctx.attempt(),
        ctx.idempotency_key()
    );
    if ctx.attempt() == 1 {
        return Err(ActivityError::retryable("payment provider timed out"));
    }
    Ok(format!("receipt-{}", ctx.idempotency_key()))
}

#[durable::activity]
async fn send_receipt(ctx: &ActivityCtx, receipt: &str) -> Result<(), ActivityError> {
    println!("  ▶ send_receipt({receipt})  attempt {}", ctx.attempt());
    Ok(())
}

#[durable::workflow]
async fn checkout(ctx: &WorkflowCtx, order: Order) -> Result<String, WorkflowError> {
    trace(ctx, "reserve_stock");
    reserve_stock(ctx, &order.sku).await?;
    trace(ctx, "charge");
    let receipt = charge(ctx, order.amount_cents).await?;
    trace(
        ctx,
        "sleep 10s (a durable timer: stop the example now and run it again)",
    );
    ctx.sleep(Duration::from_secs(10)).await?;
    trace(ctx, "send_receipt");
    send_receipt(ctx, &receipt).await?;
    Ok(receipt)
}

/// Says whether the next step replays from the history or runs.
fn trace(ctx: &WorkflowCtx, step: &str) {
    match ctx.is_replaying() {
        true => println!("  ↺ {step}: replayed from the history"),
        false => println!("  · {step}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    let order_id = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "order-42".to_owned());
    let url = durable::store::url_from_env();
    let store = durable::store::connect(&url)
        .await
        .context("opening the store")?;
    println!("store: {}", redact(&url));

    let client = Client::from_arc(store.clone());
    let order = Order {
        id: order_id.clone(),
        sku: "sku-123".into(),
        amount_cents: 1999,
    };
    let handle = client.start(checkout, order).id(&order_id).await?;
    let info = handle.info().await?;
    println!("run {} of `{}`: {}", handle.id(), order_id, info.status);
    if info.status == RunStatus::Running {
        println!("  (a killed process held it; it resumes when that lease expires, within 2 s)");
    }

    // Short leases, so a run left by a killed process resumes within seconds.
    let worker = durable_worker::Worker::builder_arc(store)
        .register(checkout)
        .lease_ttl(Duration::from_secs(2))
        .shutdown_timeout(Duration::ZERO)
        .build();
    let shutdown = worker.shutdown_token();
    let worker = tokio::spawn(worker.run());

    let result = tokio::select! {
        result = handle.result() => result,
        _ = tokio::signal::ctrl_c() => {
            println!("\ninterrupted: the run is handed back; run the example again to resume it");
            shutdown.cancel();
            worker.await??;
            return Ok(());
        }
    };
    shutdown.cancel();
    worker.await??;
    match result {
        Ok(receipt) => println!("completed: {receipt}"),
        Err(err) => println!("did not complete: {err}"),
    }
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
