//! [`Client`]: start runs, wait for results, inspect, list and cancel.

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::run::{RunFilter, RunId, RunInfo, RunStatus, StepRecord, WorkspaceId};
use crate::store::{NewRun, Store, StoreEvent};
use crate::{Error, Result, Workflow};

mod fork;
mod messages;
mod schedules;

pub use fork::ForkRun;
pub use messages::SendMessage;
pub use schedules::{ScheduleBuilder, StartSchedule};

/// Starts and inspects runs. Cheap to clone.
///
/// ```rust,no_run
/// # use durable::prelude::*;
/// # #[durable::workflow]
/// # async fn greet(ctx: &WorkflowCtx, name: String) -> Result<String, WorkflowError> { Ok(name) }
/// # async fn demo(store: durable::PgStore) -> durable::Result<()> {
/// let client = durable::Client::new(store);
/// let handle = client.start(greet, "Ada".to_string()).id("greet-ada").await?;
/// let greeting: String = handle.result().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    store: Arc<dyn Store>,
    workspace: WorkspaceId,
}

impl Client {
    /// A client of the default workspace.
    pub fn new(store: impl Store) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A client over a shared store.
    pub fn from_arc(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            workspace: WorkspaceId::DEFAULT,
        }
    }

    /// The same client, scoped to another workspace.
    pub fn in_workspace(mut self, workspace: WorkspaceId) -> Self {
        self.workspace = workspace;
        self
    }

    /// The store behind this client.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Starts `workflow` with `input`. Await the returned builder; set `.id(…)` to make the
    /// start idempotent (the same id returns the same run).
    pub fn start<W: Workflow>(&self, workflow: W, input: W::Input) -> StartRun<'_, W> {
        let _ = workflow;
        StartRun {
            client: self,
            input,
            id: None,
            timeout: None,
            _workflow: PhantomData,
        }
    }

    /// A handle on an existing run of workflow `W`.
    pub fn handle<W: Workflow>(&self, id: RunId) -> RunHandle<W::Output> {
        RunHandle {
            client: self.clone(),
            id,
            _output: PhantomData,
        }
    }

    /// A handle on run `id` whose output is read as `O`: for workflows known by name only
    /// (a [`DynWorkflow`](crate::runtime::DynWorkflow) started with [`start_json`](Self::start_json)).
    pub fn handle_as<O>(&self, id: RunId) -> RunHandle<O> {
        RunHandle {
            client: self.clone(),
            id,
            _output: PhantomData,
        }
    }

    /// The run, as stored now.
    pub async fn get(&self, id: RunId) -> Result<RunInfo> {
        self.store
            .get_run(self.workspace, id)
            .await?
            .ok_or(Error::RunNotFound(id))
    }

    /// The run's recorded steps.
    pub async fn steps(&self, id: RunId) -> Result<Vec<StepRecord>> {
        self.get(id).await?;
        self.store.steps(self.workspace, id).await
    }

    /// Runs matching `filter`, newest first.
    pub async fn list(&self, filter: RunFilter) -> Result<Vec<RunInfo>> {
        self.store.list_runs(self.workspace, &filter).await
    }

    /// Asks the run, and its children, to cancel. The workflow learns it at its next durable
    /// operation — a new step, or the sleep, retry backoff or `recv` it waits in — as an
    /// error ([`WorkflowError::is_cancelled`](crate::WorkflowError::is_cancelled)); a running
    /// activity sees it through [`ActivityCtx::is_cancelled`](crate::ActivityCtx::is_cancelled).
    /// Returning the error ends the run `cancelled`; the workflow may run cleanup steps
    /// first. A run no worker has started yet, or a parked one, is cancelled at once.
    /// Returns the status after the call: a finished run keeps its own.
    ///
    /// ```rust,no_run
    /// # use durable::prelude::*;
    /// # use std::time::Duration;
    /// #[durable::activity]
    /// async fn release_hold(_ctx: &ActivityCtx, order: &str) -> Result<(), ActivityError> {
    ///     Ok(())
    /// }
    ///
    /// #[durable::workflow]
    /// async fn hold_order(ctx: &WorkflowCtx, order: String) -> Result<(), WorkflowError> {
    ///     match ctx.sleep(Duration::from_secs(86_400)).await {
    ///         Err(cancelled) if cancelled.is_cancelled() => {
    ///             release_hold(ctx, &order).await?; // cleanup still runs activities
    ///             Err(cancelled) // the run ends `cancelled`
    ///         }
    ///         other => other,
    ///     }
    /// }
    ///
    /// # async fn demo(client: Client) -> durable::Result<()> {
    /// let run = client
    ///     .start(hold_order, "A-17".to_owned())
    ///     .timeout(Duration::from_secs(7 * 86_400))
    ///     .await?;
    /// run.cancel().await?;
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, id: RunId) -> Result<RunStatus> {
        self.store
            .request_cancel(self.workspace, id, "cancelled by a client")
            .await
    }

    /// Ends the run and its children now, whatever they are doing: the worker running it is
    /// fenced off at its next write, and no cleanup runs. For runs that do not respond to
    /// [`cancel`](Self::cancel). Returns the status after the call.
    pub async fn terminate(&self, id: RunId) -> Result<RunStatus> {
        self.store.cancel_run(self.workspace, id).await
    }

    /// Pauses the run: one that is pending or sleeping is parked now; one that is running is
    /// parked after its current step (its status stays `running` until then). Returns the
    /// status after the call.
    pub async fn pause(&self, id: RunId) -> Result<RunStatus> {
        self.store.pause_run(self.workspace, id).await
    }

    /// Resumes a parked run — paused, or parked for a human after a fix (non-determinism,
    /// exhausted retries, too many claims): it is pending again, its claim count reset.
    /// Returns the status after the call.
    pub async fn resume(&self, id: RunId) -> Result<RunStatus> {
        self.store.resume_run(self.workspace, id).await
    }

    async fn create<W: Workflow>(
        &self,
        input: W::Input,
        workflow_id: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<RunId> {
        let input = serde_json::to_value(input)?;
        let started = self
            .start_with(&WorkflowSpec::of::<W>(), input, workflow_id, timeout)
            .await?;
        Ok(started.id)
    }

    /// Starts a run of a workflow known by name, with a JSON input: for callers that take
    /// runs from outside the program (an HTTP API, a webhook). Idempotent like
    /// [`Client::start`]: the same workflow id returns the existing run (`created` false),
    /// and a different workflow or input under that id is an [`Error::IdConflict`].
    pub async fn start_json(
        &self,
        spec: &WorkflowSpec,
        input: Value,
        workflow_id: Option<String>,
    ) -> Result<StartedJson> {
        self.start_with(spec, input, workflow_id, None).await
    }

    async fn start_with(
        &self,
        spec: &WorkflowSpec,
        input: Value,
        workflow_id: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<StartedJson> {
        let id = RunId::new();
        let workflow_id = chosen_or_default(workflow_id, id)?;
        let started = self
            .store
            .start_run(NewRun {
                id,
                workspace_id: self.workspace,
                workflow_id: workflow_id.clone(),
                workflow_name: spec.name.clone(),
                workflow_version: spec.version,
                input: input.clone(),
                max_claims: spec.max_attempts,
                parent_run_id: None,
                timeout,
            })
            .await?;
        if started.created {
            tracing::debug!(run_id = %started.id, workflow = %spec.name, "run created");
            return Ok(StartedJson {
                id: started.id,
                created: true,
            });
        }
        let reason = if started.workflow_name != spec.name {
            Some(format!("workflow `{}`", started.workflow_name))
        } else if started.input != input {
            Some("a different input".to_owned())
        } else {
            None
        };
        match reason {
            None => Ok(StartedJson {
                id: started.id,
                created: false,
            }),
            Some(reason) => Err(Error::IdConflict {
                workflow_id,
                run_id: started.id,
                reason,
            }),
        }
    }

    /// Waits until the run reaches a final (or parked) state.
    async fn wait(&self, id: RunId, timeout: Option<Duration>) -> Result<RunInfo> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        // Subscribe before looking, so a finish between the look and the wait is not missed.
        let mut events = self.store.events();
        let mut poll = Duration::from_millis(20);
        loop {
            let run = self.get(id).await?;
            if run.status.is_terminal() || run.status == RunStatus::Parked {
                return Ok(run);
            }
            let mut wait_for = poll;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(Error::Timeout(timeout.unwrap_or_default()));
                }
                wait_for = wait_for.min(left);
            }
            let _ = tokio::time::timeout(wait_for, finished(&mut events, id)).await;
            poll = (poll * 2).min(Duration::from_secs(1));
        }
    }
}

/// The caller's workflow id, checked here for both stores alike (an over-long one would
/// otherwise be refused by Postgres's index only), or the run's own id.
fn chosen_or_default(chosen: Option<String>, run: RunId) -> Result<String> {
    match chosen {
        Some(id) => {
            crate::workflow_id::check(&id)?;
            Ok(id)
        }
        None => Ok(run.to_string()),
    }
}

/// Completes when the store hints that `id` finished (or that hints were lost).
async fn finished(events: &mut broadcast::Receiver<StoreEvent>, id: RunId) {
    loop {
        match events.recv().await {
            Ok(StoreEvent::RunFinished(done)) if done == id => return,
            Ok(StoreEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => return,
            Ok(_) => {}
            // No more hints: fall back to polling by never completing.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// A run being started; `.await` it. Built by [`Client::start`].
#[must_use = "a run starts only when this is awaited"]
#[derive(Debug)]
pub struct StartRun<'a, W: Workflow> {
    client: &'a Client,
    input: W::Input,
    id: Option<String>,
    timeout: Option<Duration>,
    _workflow: PhantomData<fn() -> W>,
}

impl<W: Workflow> StartRun<'_, W> {
    /// The workflow id: unique per workspace, so starting it again returns the same run
    /// (and a different input with the same id is an [`Error::IdConflict`]). 1 to
    /// [`workflow_id::MAX_BYTES`](crate::workflow_id::MAX_BYTES) bytes without control
    /// characters, or the start is an [`Error::Invalid`].
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// How long the run may take from its start, by the database clock. Past that it is
    /// asked to cancel, as by [`Client::cancel`] with the reason "timed out": it learns it
    /// at its next durable operation (a sleep or wait is cut short) and may clean up.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<'a, W: Workflow> IntoFuture for StartRun<'a, W>
where
    W::Input: Sync,
{
    type Output = Result<RunHandle<W::Output>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let id = self
                .client
                .create::<W>(self.input, self.id, self.timeout)
                .await?;
            Ok(RunHandle {
                client: self.client.clone(),
                id,
                _output: PhantomData,
            })
        })
    }
}

/// A started run, typed by its workflow's output.
#[derive(Debug, Clone)]
pub struct RunHandle<O> {
    client: Client,
    id: RunId,
    _output: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned> RunHandle<O> {
    /// The run's id.
    pub fn id(&self) -> RunId {
        self.id
    }

    /// The run, as stored now.
    pub async fn info(&self) -> Result<RunInfo> {
        self.client.get(self.id).await
    }

    /// Waits for the run to finish and returns its output, or why it did not complete.
    pub async fn result(&self) -> Result<O> {
        self.output(self.client.wait(self.id, None).await?)
    }

    /// Like [`result`](Self::result), giving up with [`Error::Timeout`] after `timeout`.
    pub async fn result_timeout(&self, timeout: Duration) -> Result<O> {
        self.output(self.client.wait(self.id, Some(timeout)).await?)
    }

    /// Asks the run to cancel; see [`Client::cancel`].
    pub async fn cancel(&self) -> Result<RunStatus> {
        self.client.cancel(self.id).await
    }

    /// Ends the run now, without cleanup; see [`Client::terminate`].
    pub async fn terminate(&self) -> Result<RunStatus> {
        self.client.terminate(self.id).await
    }

    fn output(&self, run: RunInfo) -> Result<O> {
        let message = || run.error.clone().unwrap_or_default();
        match run.status {
            RunStatus::Completed => Ok(serde_json::from_value(
                run.output.clone().unwrap_or_default(),
            )?),
            RunStatus::Failed => Err(Error::RunFailed {
                run_id: self.id,
                message: message(),
            }),
            RunStatus::Cancelled => Err(Error::RunCancelled(self.id)),
            _ => Err(Error::RunParked {
                run_id: self.id,
                reason: message(),
            }),
        }
    }
}

/// A workflow known by its name, version and attempt limit: what [`Client::start_json`]
/// needs to start it without its Rust type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowSpec {
    /// [`Workflow::NAME`].
    pub name: String,
    /// [`Workflow::VERSION`].
    pub version: u32,
    /// [`Workflow::MAX_ATTEMPTS`].
    pub max_attempts: u32,
}

impl WorkflowSpec {
    /// The spec of workflow `W`.
    pub fn of<W: Workflow>() -> Self {
        Self {
            name: W::NAME.to_owned(),
            version: W::VERSION,
            max_attempts: W::MAX_ATTEMPTS,
        }
    }
}

/// What [`Client::start_json`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedJson {
    /// The run with the workflow id.
    pub id: RunId,
    /// True when this call created it; false when it existed.
    pub created: bool,
}
