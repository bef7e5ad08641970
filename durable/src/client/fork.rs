//! Forking a run: re-run an integration from the step that failed.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde_json::Value;

use super::Client;
use crate::store::NewFork;
use crate::{Result, RunId};

impl Client {
    /// Starts a new run of the same workflow from step `from_seq` of `origin`: the steps before
    /// it are copied (their activities do not run again), the rest run. The fork is linked to
    /// its origin (`RunInfo::forked_from`). Await the returned builder; `.input(…)` replaces
    /// the input.
    ///
    /// ```rust,no_run
    /// # async fn demo(client: durable::Client, failed: durable::RunId) -> durable::Result<()> {
    /// // The run failed at step 3: fix the cause, then re-run from there.
    /// let retry = client.fork(failed, 3).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// A fork cannot copy a step that started a child workflow (the child reports to its
    /// parent only): fork from that step or an earlier one.
    pub fn fork(&self, origin: RunId, from_seq: u32) -> ForkRun<'_> {
        ForkRun {
            client: self,
            origin,
            from_seq,
            input: Ok(None),
            id: None,
        }
    }
}

/// A fork being created; `.await` it. Built by [`Client::fork`].
#[must_use = "a fork is created only when this is awaited"]
#[derive(Debug)]
pub struct ForkRun<'a> {
    client: &'a Client,
    origin: RunId,
    from_seq: u32,
    input: serde_json::Result<Option<Value>>,
    id: Option<String>,
}

impl ForkRun<'_> {
    /// Runs the fork with this input instead of the origin's.
    pub fn input<T: serde::Serialize>(mut self, input: &T) -> Self {
        self.input = serde_json::to_value(input).map(Some);
        self
    }

    /// The fork's workflow id (default: its run id), bounded as for
    /// [`StartRun::id`](crate::StartRun::id).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

impl<'a> IntoFuture for ForkRun<'a> {
    type Output = Result<RunId>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let id = RunId::new();
            let fork = NewFork {
                workspace_id: self.client.workspace,
                origin: self.origin,
                from_seq: self.from_seq,
                id,
                workflow_id: super::chosen_or_default(self.id, id)?,
                input: self.input?,
            };
            self.client.store.fork_run(fork).await
        })
    }
}
