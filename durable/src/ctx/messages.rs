//! Messages and events: `ctx.recv` waits durably for a message sent with `Client::send`;
//! `ctx.set_event` publishes a value that `Client::get_event` reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Halt, WorkflowCtx, new_record};
use crate::run::{StepKind, StepRecord, StepStatus};
use crate::store::{Checkpoint, Message, Transition};
use crate::{Error, WorkflowError};

impl WorkflowCtx {
    /// Waits for the next message on `topic`, for at most `timeout` (by the database clock),
    /// and returns it, or `None` when the time is up. The wait is durable: the run is released
    /// and any worker resumes it when a message arrives or the time runs out. Messages sent
    /// before the workflow waits are kept, and each is taken by exactly one `recv`.
    ///
    /// ```rust,no_run
    /// # use durable::prelude::*;
    /// # use std::time::Duration;
    /// #[durable::workflow]
    /// async fn expense(ctx: &WorkflowCtx, amount: u64) -> Result<bool, WorkflowError> {
    ///     let approved: Option<bool> = ctx.recv("approval", Duration::from_secs(86_400)).await?;
    ///     Ok(approved.unwrap_or(false))
    /// }
    /// ```
    pub async fn recv<T: DeserializeOwned>(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<T>, WorkflowError> {
        let (seq, recorded) = self.begin_step(StepKind::Recv, topic).await?;
        let deadline = match recorded {
            Some(record) if record.status == StepStatus::Completed => {
                return decode_received(topic, record.output);
            }
            Some(record) => record.wake_at.unwrap_or_else(|| self.clock_now()),
            None => self.clock_now() + timeout,
        };
        if let Some(message) = self.next_message(topic).await? {
            let output = json!({ "message": message.payload });
            let mut checkpoint = self.checkpoint_of(received(seq, topic, Some(output.clone())));
            checkpoint.consumed.push((message.id, seq));
            self.commit(checkpoint).await?;
            return decode_received(topic, Some(output));
        }
        if self.clock_now() >= deadline {
            self.write(
                vec![received(seq, topic, Some(Value::Null))],
                Transition::Continue,
            )
            .await?;
            return Ok(None);
        }
        self.wait_for_message(seq, topic, deadline).await
    }

    /// Publishes `value` under `key` for clients to read with `Client::get_event`; a later
    /// `set_event` with the same key replaces it. Recorded: a replay does not publish again.
    pub async fn set_event<V: Serialize>(&self, key: &str, value: &V) -> Result<(), WorkflowError> {
        let (seq, recorded) = self.begin_step(StepKind::SetEvent, key).await?;
        if recorded.is_some() {
            return Ok(());
        }
        let value = serde_json::to_value(value)?;
        let record = StepRecord {
            output: Some(value.clone()),
            ..new_record(seq, key, StepKind::SetEvent, StepStatus::Completed)
        };
        let mut checkpoint = self.checkpoint_of(record);
        checkpoint.events.push((key.to_owned(), value));
        self.commit(checkpoint).await
    }

    /// Releases the run until a message on `topic` arrives or `deadline` passes.
    async fn wait_for_message<T>(
        &self,
        seq: u32,
        topic: &str,
        deadline: DateTime<Utc>,
    ) -> Result<T, WorkflowError> {
        let record = StepRecord {
            wake_at: Some(deadline),
            ..new_record(seq, topic, StepKind::Recv, StepStatus::Waiting)
        };
        let transition = Transition::Wait {
            topic: topic.to_owned(),
            wake_at: deadline,
        };
        self.write(vec![record], transition).await?;
        self.halt(Halt::Suspended { wake_at: deadline });
        Err(WorkflowError::halted())
    }

    /// The next message, retrying transient database errors; halts the run if they persist.
    async fn next_message(&self, topic: &str) -> Result<Option<Message>, WorkflowError> {
        let mut backoff = Duration::from_millis(20);
        loop {
            match self.store().next_message(self.run_id(), topic).await {
                Ok(message) => return Ok(message),
                Err(Error::Database(e)) if backoff < Duration::from_secs(2) => {
                    tracing::warn!(error = %e, "reading messages failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading messages failed; abandoning the run here");
                    self.halt(Halt::LeaseLost);
                    return Err(WorkflowError::halted());
                }
            }
        }
    }

    fn checkpoint_of(&self, record: StepRecord) -> Checkpoint {
        let mut checkpoint =
            Checkpoint::transition(self.lease(), Transition::Continue, self.lease_ttl());
        checkpoint.steps.push(record);
        checkpoint
    }
}

/// A finished `recv` step: `{"message": payload}`, or `null` for a timeout.
fn received(seq: u32, topic: &str, output: Option<Value>) -> StepRecord {
    StepRecord {
        output,
        ..new_record(seq, topic, StepKind::Recv, StepStatus::Completed)
    }
}

fn decode_received<T: DeserializeOwned>(
    topic: &str,
    output: Option<Value>,
) -> Result<Option<T>, WorkflowError> {
    match output.and_then(|o| o.get("message").cloned()) {
        None => Ok(None),
        Some(payload) => serde_json::from_value(payload).map(Some).map_err(|e| {
            WorkflowError::msg(format!(
                "the message on topic `{topic}` does not decode: {e}"
            ))
        }),
    }
}
