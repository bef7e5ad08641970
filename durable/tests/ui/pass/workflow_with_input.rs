use durable::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub amount: u64,
}

/// Checks an order out.
#[durable::workflow]
pub async fn checkout(ctx: &WorkflowCtx, order: Order) -> Result<String, WorkflowError> {
    let _ = ctx;
    Ok(order.id)
}

fn takes<W: Workflow<Input = Order, Output = String>>(workflow: W) -> W {
    workflow
}

fn main() {
    let workflow = takes(checkout);
    // The struct is a plain value: copyable and printable.
    let copy = workflow;
    assert_eq!(format!("{copy:?}"), "checkout");
    assert_eq!(<checkout as Workflow>::NAME, "checkout");
    assert_eq!(<checkout as Workflow>::VERSION, 1);
    assert_eq!(<checkout as Workflow>::MAX_ATTEMPTS, 5);
}
