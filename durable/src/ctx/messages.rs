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
        let topics = checked_topics(&[topic])?;
        let received = self.receive(&topics, topic, timeout).await?;
        received.map(|message| message.decode()).transpose()
    }

    /// Waits for the first message on any of `topics`, for at most `timeout`: a durable
    /// `select` of messages against a timer. Which message came first is recorded, so a
    /// replay takes the same branch; messages on the other topics stay for later `recv`s.
    /// Topics may not repeat or contain a newline.
    ///
    /// ```rust,no_run
    /// # use durable::prelude::*;
    /// # use std::time::Duration;
    /// #[durable::workflow]
    /// async fn review(ctx: &WorkflowCtx, doc: String) -> Result<String, WorkflowError> {
    ///     let answer = ctx
    ///         .recv_any(&["approve", "reject"], Duration::from_secs(3_600))
    ///         .await?;
    ///     Ok(match answer {
    ///         Some(m) if m.topic() == "approve" => format!("{doc} approved"),
    ///         Some(m) => format!("{doc} rejected: {}", m.decode::<String>()?),
    ///         None => format!("{doc}: nobody answered within the hour"),
    ///     })
    /// }
    /// ```
    pub async fn recv_any(
        &self,
        topics: &[&str],
        timeout: Duration,
    ) -> Result<Option<Received>, WorkflowError> {
        let topics = checked_topics(topics)?;
        self.receive(&topics, &topics.join(" | "), timeout).await
    }

    /// The durable wait behind `recv` and `recv_any`, recorded as one step named `name`.
    pub(super) async fn receive(
        &self,
        topics: &[String],
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Received>, WorkflowError> {
        let (seq, recorded) = self.begin_step(StepKind::Recv, name).await?;
        let deadline = match recorded {
            Some(record) if record.status == StepStatus::Completed => {
                return Ok(Received::from_output(topics, record.output));
            }
            Some(record) => record.wake_at.unwrap_or_else(|| self.clock_now()),
            None => self.clock_now() + timeout,
        };
        // A cancellation cuts the wait short even if a message is there: a parent asked to
        // cancel learns it before the outcome of a child cancelled with it.
        self.interrupt_wait(seq)?;
        if let Some(message) = self.next_message(topics).await? {
            let output = json!({ "topic": message.topic, "message": message.payload });
            let mut checkpoint = self.checkpoint_of(received(seq, name, Some(output.clone())));
            checkpoint.consumed.push((message.id, seq));
            self.commit(checkpoint).await?;
            return Ok(Received::from_output(topics, Some(output)));
        }
        if self.clock_now() >= deadline {
            self.write(
                vec![received(seq, name, Some(Value::Null))],
                Transition::Continue,
            )
            .await?;
            return Ok(None);
        }
        self.wait_for_message(seq, topics, name, deadline).await
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

    /// Releases the run until a message on one of `topics` arrives or `deadline` passes.
    async fn wait_for_message<T>(
        &self,
        seq: u32,
        topics: &[String],
        name: &str,
        deadline: DateTime<Utc>,
    ) -> Result<T, WorkflowError> {
        let record = StepRecord {
            wake_at: Some(deadline),
            ..new_record(seq, name, StepKind::Recv, StepStatus::Waiting)
        };
        let transition = Transition::Wait {
            topics: topics.to_vec(),
            wake_at: self.due_by_deadline(deadline),
        };
        self.write(vec![record], transition).await?;
        self.halt(Halt::Suspended { wake_at: deadline });
        Err(WorkflowError::halted())
    }

    /// The next message, retrying transient database errors; halts the run if they persist.
    async fn next_message(&self, topics: &[String]) -> Result<Option<Message>, WorkflowError> {
        let mut backoff = Duration::from_millis(20);
        loop {
            match self.store().next_message(self.run_id(), topics).await {
                Ok(message) => return Ok(message),
                Err(e @ Error::Database { .. }) if backoff < Duration::from_secs(2) => {
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

/// A message a workflow received: its topic and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    topic: String,
    payload: Value,
}

impl Received {
    /// The topic it came on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Its payload, as sent.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// Its payload as a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, WorkflowError> {
        serde_json::from_value(self.payload.clone()).map_err(|e| {
            WorkflowError::msg(format!(
                "the message on topic `{}` does not decode: {e}",
                self.topic
            ))
        })
    }

    /// Reads a recorded `recv` step: `{"topic": …, "message": payload}`, or `null` for a
    /// timeout. Records written before waits could take several topics have no `topic`:
    /// they waited for one.
    fn from_output(topics: &[String], output: Option<Value>) -> Option<Self> {
        let output = output?;
        let payload = output.get("message")?.clone();
        let topic = match output.get("topic").and_then(Value::as_str) {
            Some(topic) => topic.to_owned(),
            None => topics.first().cloned().unwrap_or_default(),
        };
        Some(Self { topic, payload })
    }
}

/// The topics of one wait: at least one, none repeated, none with a newline (waits store
/// their topics one a line).
fn checked_topics(topics: &[&str]) -> Result<Vec<String>, WorkflowError> {
    if topics.is_empty() {
        return Err(WorkflowError::msg(
            "a wait for messages needs at least one topic",
        ));
    }
    let mut checked: Vec<String> = Vec::with_capacity(topics.len());
    for topic in topics {
        if topic.contains('\n') {
            return Err(WorkflowError::msg(format!(
                "topic {topic:?} contains a newline, which topics may not"
            )));
        }
        if checked.iter().any(|t| t == topic) {
            return Err(WorkflowError::msg(format!(
                "topic `{topic}` is listed twice in one wait"
            )));
        }
        checked.push((*topic).to_owned());
    }
    Ok(checked)
}

/// A finished `recv` step: `{"topic": …, "message": payload}`, or `null` for a timeout.
fn received(seq: u32, name: &str, output: Option<Value>) -> StepRecord {
    StepRecord {
        output,
        ..new_record(seq, name, StepKind::Recv, StepStatus::Completed)
    }
}
