//! Workflows the tests run, in-process and in the `test-worker` binary.

use std::time::Duration;

use durable::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Ledger;

/// Input of [`steps`]: run `count` activities; the first execution of step `hang_at` blocks
/// until the test releases it (or the process dies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepsInput {
    pub ledger: String,
    pub count: u32,
    pub hang_at: Option<u32>,
}

/// `count` sequential activities, each writing to the ledger; returns their outputs.
#[durable::workflow]
pub async fn steps(ctx: &WorkflowCtx, input: StepsInput) -> Result<Vec<String>, WorkflowError> {
    let mut outputs = Vec::new();
    for i in 0..input.count {
        let hang = input.hang_at == Some(i);
        outputs.push(effect(ctx, &input.ledger, hang).await?);
    }
    Ok(outputs)
}

/// Records one execution in the ledger; with `hang`, its first execution blocks until the
/// test releases its key. Returns `seq@pid`.
#[durable::activity(retry(max_attempts = 3, initial = "100ms"))]
pub async fn effect(ctx: &ActivityCtx, ledger: &str, hang: bool) -> Result<String, ActivityError> {
    let ledger = Ledger::at(ledger);
    let key = ctx.idempotency_key();
    let prior = ledger
        .record(key, ctx.run_id().0, ctx.seq(), ctx.attempt())
        .await
        .map_err(ActivityError::retryable)?;
    if hang && prior == 0 {
        block_until_released(&ledger, key).await?;
    }
    Ok(format!("{}@{}", ctx.seq(), std::process::id()))
}

/// Blocks until the test releases `key` (polling the ledger database).
pub async fn block_until_released(ledger: &Ledger, key: &str) -> Result<(), ActivityError> {
    tracing::info!(key, "activity blocked until released");
    // Polls the database: this is the activity under test waiting, not the test.
    while !ledger
        .is_released(key)
        .await
        .map_err(ActivityError::retryable)?
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Input of [`flaky`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlakyInput {
    pub ledger: String,
    /// Attempts that fail before one succeeds.
    pub failures: u32,
    /// Fail with a terminal error instead.
    pub terminal: bool,
}

/// One activity that fails `failures` times; see the retry policies below.
#[durable::workflow]
pub async fn flaky(ctx: &WorkflowCtx, input: FlakyInput) -> Result<u32, WorkflowError> {
    Ok(flaky_call(ctx, &input).await?)
}

#[durable::activity(retry(max_attempts = 4, initial = "50ms", backoff = 2.0, jitter = 0.2))]
pub async fn flaky_call(ctx: &ActivityCtx, input: &FlakyInput) -> Result<u32, ActivityError> {
    fail_until(ctx, input).await
}

/// Like [`flaky`] but parks when attempts run out.
#[durable::workflow]
pub async fn flaky_pause(ctx: &WorkflowCtx, input: FlakyInput) -> Result<u32, WorkflowError> {
    Ok(flaky_call_pause(ctx, &input).await?)
}

#[durable::activity(retry(max_attempts = 3, initial = "10ms", on_exhausted = "pause"))]
pub async fn flaky_call_pause(ctx: &ActivityCtx, input: &FlakyInput) -> Result<u32, ActivityError> {
    fail_until(ctx, input).await
}

/// Like [`flaky`] but each backoff (1.5 s) is longer than the inline wait, so it becomes a
/// durable timer that outlives the worker process.
#[durable::workflow]
pub async fn flaky_slow(ctx: &WorkflowCtx, input: FlakyInput) -> Result<u32, WorkflowError> {
    Ok(flaky_call_slow(ctx, &input).await?)
}

#[durable::activity(retry(max_attempts = 5, initial = "1500ms", backoff = 1.0, jitter = 0.0))]
pub async fn flaky_call_slow(ctx: &ActivityCtx, input: &FlakyInput) -> Result<u32, ActivityError> {
    fail_until(ctx, input).await
}

async fn fail_until(ctx: &ActivityCtx, input: &FlakyInput) -> Result<u32, ActivityError> {
    let ledger = Ledger::at(&input.ledger);
    let prior = ledger
        .record(
            ctx.idempotency_key(),
            ctx.run_id().0,
            ctx.seq(),
            ctx.attempt(),
        )
        .await
        .map_err(ActivityError::retryable)?;
    if input.terminal {
        return Err(ActivityError::terminal("card declined"));
    }
    if prior < i64::from(input.failures) {
        return Err(ActivityError::retryable(format!(
            "upstream unavailable (attempt {})",
            ctx.attempt()
        )));
    }
    Ok(ctx.attempt())
}

/// Sleeps durably; returns `(due, woke)` as milliseconds since the epoch (database clock).
#[durable::workflow]
pub async fn sleeper(ctx: &WorkflowCtx, millis: u64) -> Result<(i64, i64), WorkflowError> {
    let before = ctx.now().await?;
    ctx.sleep(Duration::from_millis(millis)).await?;
    let woke = ctx.now().await?;
    let due = before.timestamp_millis() + millis as i64;
    Ok((due, woke.timestamp_millis()))
}

/// Its activity kills the worker process every time: a poison run.
#[durable::workflow(max_attempts = 3)]
pub async fn poison(ctx: &WorkflowCtx, ledger: String) -> Result<(), WorkflowError> {
    abort_process(ctx, &ledger).await?;
    Ok(())
}

#[durable::activity]
pub async fn abort_process(ctx: &ActivityCtx, ledger: &str) -> Result<(), ActivityError> {
    Ledger::at(ledger)
        .record(
            ctx.idempotency_key(),
            ctx.run_id().0,
            ctx.seq(),
            ctx.attempt(),
        )
        .await
        .map_err(ActivityError::retryable)?;
    std::process::abort()
}

/// Publishes its stage as an event, waits up to `timeout_ms` for an `approve` message, and
/// returns it (`None` on timeout).
#[durable::workflow]
pub async fn approval(ctx: &WorkflowCtx, timeout_ms: u64) -> Result<Option<String>, WorkflowError> {
    ctx.set_event("stage", &"waiting").await?;
    let answer = ctx
        .recv("approve", Duration::from_millis(timeout_ms))
        .await?;
    ctx.set_event("stage", &"decided").await?;
    Ok(answer)
}

/// Takes messages on `item` until one does not come within 300 ms.
#[durable::workflow]
pub async fn collect(ctx: &WorkflowCtx) -> Result<Vec<String>, WorkflowError> {
    let mut items = Vec::new();
    while let Some(item) = ctx.recv("item", Duration::from_millis(300)).await? {
        items.push(item);
    }
    Ok(items)
}

/// Waits up to `timeout_ms` for the first message on `approve` or `reject`, and returns its
/// topic and payload (`None` on timeout).
#[durable::workflow]
pub async fn review(
    ctx: &WorkflowCtx,
    timeout_ms: u64,
) -> Result<Option<(String, String)>, WorkflowError> {
    let answer = ctx
        .recv_any(&["approve", "reject"], Duration::from_millis(timeout_ms))
        .await?;
    match answer {
        Some(message) => Ok(Some((message.topic().to_owned(), message.decode()?))),
        None => Ok(None),
    }
}

/// Starts three [`approval`] children, publishes their run ids as the event `children`, and
/// returns which one was approved first, with its answer (`None` after `timeout_ms`).
#[durable::workflow]
pub async fn first_approval(
    ctx: &WorkflowCtx,
    timeout_ms: u64,
) -> Result<Option<(usize, Option<String>)>, WorkflowError> {
    let mut children = Vec::new();
    for _ in 0..3 {
        children.push(ctx.start_child(approval, 600_000).await?);
    }
    let ids: Vec<RunId> = children.iter().map(|c| c.run_id()).collect();
    ctx.set_event("children", &ids).await?;
    ctx.first_of(&children, Duration::from_millis(timeout_ms))
        .await
}

/// A child's work: the square of its input.
#[durable::workflow]
pub async fn square(_ctx: &WorkflowCtx, x: u64) -> Result<u64, WorkflowError> {
    Ok(x * x)
}

/// Fans out `n` children and joins them: the sum of the squares below `n`.
#[durable::workflow]
pub async fn fan_out(ctx: &WorkflowCtx, n: u64) -> Result<u64, WorkflowError> {
    let mut children = Vec::new();
    for x in 0..n {
        children.push(ctx.start_child(square, x).await?);
    }
    let mut sum = 0;
    for child in children {
        sum += child.result(ctx).await?;
    }
    Ok(sum)
}

/// Runs [`steps`] as a child and returns its outputs.
#[durable::workflow]
pub async fn parent_of_steps(
    ctx: &WorkflowCtx,
    input: StepsInput,
) -> Result<Vec<String>, WorkflowError> {
    ctx.child(steps, input).await
}

/// Runs [`sleeper`] as a child (so a test can cancel the parent while the child sleeps).
#[durable::workflow]
pub async fn parent_of_sleeper(
    ctx: &WorkflowCtx,
    millis: u64,
) -> Result<(i64, i64), WorkflowError> {
    ctx.child(sleeper, millis).await
}

/// Registers every test workflow on a worker builder.
pub fn register_all(builder: durable_worker::WorkerBuilder) -> durable_worker::WorkerBuilder {
    builder
        .register(steps)
        .register(flaky)
        .register(flaky_pause)
        .register(flaky_slow)
        .register(sleeper)
        .register(poison)
        .register(approval)
        .register(collect)
        .register(review)
        .register(crate::cancelling::tidy_sleeper)
        .register(crate::cancelling::busy)
        .register(crate::cancelling::tidy_with_effect)
        .register(first_approval)
        .register(square)
        .register(fan_out)
        .register(parent_of_steps)
        .register(parent_of_sleeper)
        .register(crate::scheduled::scheduled)
        .register(crate::transactional::deposit)
}
