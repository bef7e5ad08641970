//! Sending messages to runs and reading the events they publish.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Client;
use crate::store::NewMessage;
use crate::{Error, Result, RunId};

impl Client {
    /// Sends `payload` to the run on `topic`; the run takes it with `ctx.recv(topic, …)`.
    /// Await the returned builder; with `.idempotency_key(…)`, a repeated send is delivered
    /// once. Sending to a finished run is an [`Error::Invalid`](crate::Error::Invalid).
    ///
    /// ```rust,no_run
    /// # async fn demo(client: durable::Client, run: durable::RunId) -> durable::Result<()> {
    /// client.send(run, "approval", &true).idempotency_key("approval-from-ada").await?;
    /// # Ok(()) }
    /// ```
    pub fn send<T: serde::Serialize>(
        &self,
        run: RunId,
        topic: &str,
        payload: &T,
    ) -> SendMessage<'_> {
        SendMessage {
            client: self,
            run,
            topic: topic.to_owned(),
            payload: serde_json::to_value(payload),
            idempotency_key: None,
        }
    }

    /// The value the run published under `key` with `ctx.set_event`, waiting up to `timeout`
    /// for it to appear; `None` if it did not.
    pub async fn get_event<T: DeserializeOwned>(
        &self,
        run: RunId,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<T>> {
        self.get(run).await?;
        let give_up = tokio::time::Instant::now() + timeout;
        let mut poll = Duration::from_millis(10);
        loop {
            if let Some(value) = self.store.get_event(self.workspace, run, key).await? {
                return Ok(Some(serde_json::from_value(value)?));
            }
            let left = give_up.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            tokio::time::sleep(poll.min(left)).await;
            poll = (poll * 2).min(Duration::from_millis(500));
        }
    }
}

/// A message being sent; `.await` it. Built by [`Client::send`].
#[must_use = "a message is sent only when this is awaited"]
#[derive(Debug)]
pub struct SendMessage<'a> {
    client: &'a Client,
    run: RunId,
    topic: String,
    payload: serde_json::Result<Value>,
    idempotency_key: Option<String>,
}

impl SendMessage<'_> {
    /// Makes the send idempotent: the same key to the same run is delivered once.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

impl<'a> IntoFuture for SendMessage<'a> {
    /// True when delivered; false when a message with the same key was already sent.
    type Output = Result<bool>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            if self.topic.contains('\n') {
                return Err(Error::Invalid(format!(
                    "topic {:?} contains a newline, which topics may not",
                    self.topic
                )));
            }
            let message = NewMessage {
                workspace_id: self.client.workspace,
                run_id: self.run,
                topic: self.topic,
                payload: self.payload?,
                idempotency_key: self.idempotency_key,
            };
            self.client.store.send_message(message).await
        })
    }
}
