//! A workflow with a transactional step, for the exactly-once tests.

use durable::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Ledger;
use crate::workflows::effect;

/// Where [`deposit`]'s first execution blocks, for a test to kill its worker there.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub enum HangAt {
    Nowhere,
    /// Inside the transaction, after its insert, before its commit.
    BeforeCommit,
    /// In the activity after the transaction committed.
    AfterCommit,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DepositInput {
    /// The test database: the ledger and the `test_deposits` table.
    pub ledger: String,
    pub hang: HangAt,
}

/// Inserts a deposit row in a transactional step (the same Postgres database as the store),
/// then runs an activity. Returns the deposit's id.
#[durable::workflow]
pub async fn deposit(ctx: &WorkflowCtx, input: DepositInput) -> Result<i64, WorkflowError> {
    let run = ctx.run_id().0;
    let ledger = input.ledger.clone();
    let hang_before = input.hang == HangAt::BeforeCommit;
    let id = ctx
        .transaction("insert_deposit", move |tx| {
            Box::pin(async move {
                let ledger = Ledger::at(&ledger);
                let key = format!("{run}-tx");
                let prior = ledger
                    .record(&key, run, 0, 1)
                    .await
                    .map_err(ActivityError::retryable)?;
                let row = tx
                    .query_one(
                        "INSERT INTO test_deposits (run_id) VALUES ($1) RETURNING id",
                        &[&run],
                    )
                    .await?;
                if hang_before && prior == 0 {
                    crate::workflows::block_until_released(&ledger, &key).await?;
                }
                Ok(row.get::<_, i64>(0))
            })
        })
        .await?;
    effect(ctx, &input.ledger, input.hang == HangAt::AfterCommit).await?;
    Ok(id)
}
