use durable::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub amount: u64,
    pub note: String,
}

mod flows {
    use super::*;

    /// A public workflow in a module, with every option and a destructuring input.
    #[durable::workflow(name = "billing.refund", version = 3, max_attempts = 9)]
    #[allow(clippy::needless_pass_by_value)]
    pub async fn refund(
        _ctx: &durable::WorkflowCtx,
        Order { amount, .. }: Order,
    ) -> std::result::Result<u64, durable::WorkflowError> {
        Ok(amount)
    }
}

fn main() {
    let _ = flows::refund;
    assert_eq!(<flows::refund as Workflow>::NAME, "billing.refund");
    assert_eq!(<flows::refund as Workflow>::VERSION, 3);
    assert_eq!(<flows::refund as Workflow>::MAX_ATTEMPTS, 9);
    let _: <flows::refund as Workflow>::Input = Order { amount: 1, note: String::new() };
}
