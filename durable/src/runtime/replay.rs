//! The replay check: replays the recorded histories of finished runs against the current
//! workflow code and reports where they diverge, before that code is deployed.
//!
//! Nothing is run and nothing is written. The workflow executes in replay-only mode, where a
//! step the history does not have stops the replay instead of running, and the store it sees
//! is a read-only view whose writes record nothing.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{CancelSignal, DynWorkflow, ExecutionSettings, Halt};
use crate::run::{RunFilter, RunId, RunInfo, RunStatus, StepKind, StepRecord, WorkspaceId};
use crate::store::{
    Checkpoint, ClaimRequest, ClaimedRun, Lease, Message, NewFork, NewMessage, NewRun, Renewed,
    StartedRun, Store, StoreEvent,
};
use crate::{Error, Result, WorkflowCtx, WorkflowError};

/// How long one run's replay may take. Replaying awaits nothing but the code itself, so a
/// replay that takes this long waits on something that is not durable.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Replays the finished runs of `workflows` in the default workspace against the code given,
/// without running any activity or writing anything, and reports every run whose history
/// the code no longer reproduces. Run it before a deploy: a run that diverges here would be
/// parked if it were in flight when the new code took over.
///
/// `filter` picks the runs: by default the newest 100 completed runs of each workflow given;
/// `filter.status(RunStatus::Failed)` checks failed runs instead, and
/// `filter.workflow(name)` only the runs of the workflow named (which must be among
/// `workflows`). Runs of workflows not given are not checked.
///
/// ```rust,no_run
/// # use std::sync::Arc;
/// # use durable::prelude::*;
/// # #[durable::workflow]
/// # async fn checkout(_ctx: &WorkflowCtx, amount: u64) -> Result<u64, WorkflowError> { Ok(amount) }
/// use durable::runtime::{erase, replay_check};
///
/// # async fn demo() -> durable::Result<()> {
/// let store = durable::store::connect(&durable::store::url_from_env()).await?;
/// let report = replay_check(store, &[Arc::from(erase(checkout))], Default::default()).await?;
/// println!("{report}");
/// if !report.is_clean() {
///     std::process::exit(1);
/// }
/// # Ok(()) }
/// ```
pub async fn replay_check(
    store: Arc<dyn Store>,
    workflows: &[Arc<dyn DynWorkflow>],
    filter: RunFilter,
) -> Result<ReplayReport> {
    replay_check_in(store, WorkspaceId::DEFAULT, workflows, filter).await
}

/// [`replay_check`] on the runs of another workspace.
pub async fn replay_check_in(
    store: Arc<dyn Store>,
    workspace: WorkspaceId,
    workflows: &[Arc<dyn DynWorkflow>],
    filter: RunFilter,
) -> Result<ReplayReport> {
    let status = finished_status(&filter)?;
    let filter = filter.status(status);
    let store: Arc<dyn Store> = Arc::new(ReadOnly(store));
    let mut report = ReplayReport::default();
    for workflow in selected(workflows, filter.workflow_name.as_deref())? {
        let runs = store
            .list_runs(workspace, &filter.clone().workflow(workflow.name()))
            .await?;
        for run in runs {
            report.runs_checked += 1;
            if let Some(divergence) = replay_run(&store, workflow.as_ref(), run).await? {
                tracing::warn!(%divergence, "replay diverged");
                report.divergences.push(divergence);
            }
        }
    }
    Ok(report)
}

/// The status of the runs to replay: completed unless the filter asks for failed ones.
fn finished_status(filter: &RunFilter) -> Result<RunStatus> {
    match filter.status {
        None => Ok(RunStatus::Completed),
        Some(status @ (RunStatus::Completed | RunStatus::Failed)) => Ok(status),
        Some(other) => Err(Error::Invalid(format!(
            "a replay check replays finished runs, completed or failed, not {other} ones"
        ))),
    }
}

/// The workflows to check: all, or the one named; names must be unique.
fn selected<'a>(
    workflows: &'a [Arc<dyn DynWorkflow>],
    only: Option<&str>,
) -> Result<Vec<&'a Arc<dyn DynWorkflow>>> {
    for (i, workflow) in workflows.iter().enumerate() {
        if workflows[..i].iter().any(|w| w.name() == workflow.name()) {
            return Err(Error::Invalid(format!(
                "workflow `{}` is given twice; a replay check needs one code per name",
                workflow.name()
            )));
        }
    }
    let Some(name) = only else {
        return Ok(workflows.iter().collect());
    };
    match workflows.iter().find(|w| w.name() == name) {
        Some(workflow) => Ok(vec![workflow]),
        None => Err(Error::Invalid(format!(
            "no workflow named `{name}` among the {} given to the replay check",
            workflows.len()
        ))),
    }
}

/// Replays one run; returns where it diverged, if it did.
async fn replay_run(
    store: &Arc<dyn Store>,
    workflow: &dyn DynWorkflow,
    info: RunInfo,
) -> Result<Option<Divergence>> {
    let claimed = ClaimedRun {
        history: store.steps(info.workspace_id, info.id).await?,
        lease: Lease {
            run_id: info.id,
            epoch: 0,
        },
        db_now: store.now().await?,
        info: info.clone(),
    };
    let settings = ExecutionSettings::default();
    let stop = CancellationToken::new();
    let signal = CancelSignal::new(&stop);
    let ctx = WorkflowCtx::new(store.clone(), claimed, settings, stop, signal);
    ctx.enter_replay_only();
    let replay = AssertUnwindSafe(workflow.run(ctx.clone(), info.input.clone())).catch_unwind();
    let mismatch = match tokio::time::timeout(REPLAY_TIMEOUT, replay).await {
        Ok(Ok(result)) => judge(&ctx, &info, result),
        Ok(Err(_)) => Some(stopped("the workflow panicked during the replay")),
        Err(_) => Some(stopped(format!(
            "the replay did not finish within {REPLAY_TIMEOUT:?}: the workflow waits on \
             something that is not a durable step"
        ))),
    };
    Ok(mismatch.map(|mismatch| Divergence {
        run_id: info.id,
        workflow: info.workflow_name,
        mismatch,
    }))
}

/// Compares how the replay ended with how the run ended.
fn judge(
    ctx: &WorkflowCtx,
    info: &RunInfo,
    result: std::result::Result<Value, WorkflowError>,
) -> Option<Mismatch> {
    if let Some(mismatch) = ctx.take_divergence() {
        return Some(mismatch);
    }
    if let Some(halt) = ctx.halted() {
        return Some(stopped(match halt {
            Halt::Parked { reason } => reason,
            Halt::Suspended { wake_at } => format!(
                "the replay reached a wait due at {wake_at}, which a finished run cannot have"
            ),
            Halt::LeaseLost => "the replay was halted".to_owned(),
        }));
    }
    if matches!(&result, Err(e) if e.is_halted()) {
        return Some(stopped("the workflow returned a halt it did not cause"));
    }
    if let Some(step) = ctx.unreplayed_step() {
        return Some(Mismatch::Unreplayed {
            seq: step.seq,
            recorded: StepRef::new(step.kind, &step.name),
        });
    }
    let recorded = match info.status {
        RunStatus::Completed => Ok(info.output.clone().unwrap_or(Value::Null)),
        _ => Err(info.error.clone().unwrap_or_default()),
    };
    let replayed = result.map_err(|e| e.message().to_owned());
    (recorded != replayed).then(|| Mismatch::Outcome {
        recorded: describe_end(&recorded),
        replayed: describe_end(&replayed),
    })
}

fn describe_end(end: &std::result::Result<Value, String>) -> String {
    match end {
        Ok(output) => format!("output {output}"),
        Err(error) => format!("error `{error}`"),
    }
}

fn stopped(reason: impl Into<String>) -> Mismatch {
    Mismatch::Stopped {
        seq: None,
        reason: reason.into(),
    }
}

/// What a replay check found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Runs replayed.
    pub runs_checked: usize,
    /// One per run that diverged: where it first did (a replay stops there).
    pub divergences: Vec<Divergence>,
}

impl ReplayReport {
    /// True when every run replayed as recorded.
    pub fn is_clean(&self) -> bool {
        self.divergences.is_empty()
    }

    /// How many runs diverged.
    pub fn runs_diverged(&self) -> usize {
        self.divergences.len()
    }

    /// Adds the findings of another check (of other runs) to this report.
    pub fn merge(&mut self, other: ReplayReport) {
        self.runs_checked += other.runs_checked;
        self.divergences.extend(other.divergences);
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs = match self.runs_checked {
            1 => "1 run".to_owned(),
            n => format!("{n} runs"),
        };
        if self.is_clean() {
            return write!(f, "{runs} replayed, no divergence");
        }
        write!(f, "{runs} replayed, {} diverged:", self.runs_diverged())?;
        for divergence in &self.divergences {
            write!(f, "\n  {divergence}")?;
        }
        Ok(())
    }
}

/// A run whose history the current code does not reproduce.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Divergence {
    /// The run.
    pub run_id: RunId,
    /// Its workflow.
    pub workflow: String,
    /// Where and how it diverged.
    pub mismatch: Mismatch,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {} of `{}`: {}",
            self.run_id, self.workflow, self.mismatch
        )
    }
}

/// How a replay differed from the history.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Mismatch {
    /// At `seq`, the history records one step and the code asks for another.
    Step {
        /// The position.
        seq: u32,
        /// What the history has there.
        recorded: StepRef,
        /// What the code asks for.
        asked: StepRef,
    },
    /// The code asks for a step after the last one recorded; it was not run.
    NewStep {
        /// The position, one past the history.
        seq: u32,
        /// What the code asks for.
        asked: StepRef,
    },
    /// The code finished, but the history records more steps, from `seq` on.
    Unreplayed {
        /// The first recorded step the code did not ask for.
        seq: u32,
        /// What the history has there.
        recorded: StepRef,
    },
    /// The code ended the run otherwise than recorded: another output or error.
    Outcome {
        /// How the run ended (`output …` or ``error `…` ``).
        recorded: String,
        /// How the replay ended.
        replayed: String,
    },
    /// The replay stopped for another reason: a recorded value no longer decodes, a step was
    /// left unfinished, the workflow panicked or waited on something that is not durable.
    Stopped {
        /// The position, when one is known.
        seq: Option<u32>,
        /// Why.
        reason: String,
    },
}

impl Mismatch {
    /// The position of the divergence, when it is at a step.
    pub fn seq(&self) -> Option<u32> {
        match self {
            Self::Step { seq, .. } | Self::NewStep { seq, .. } | Self::Unreplayed { seq, .. } => {
                Some(*seq)
            }
            Self::Outcome { .. } => None,
            Self::Stopped { seq, .. } => *seq,
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Step {
                seq,
                recorded,
                asked,
            } => write!(
                f,
                "at step {seq} the history records {recorded}, but the code asks for {asked}"
            ),
            Self::NewStep { seq, asked } => write!(
                f,
                "at step {seq} the code asks for {asked}, past the end of the history \
                 (not run)"
            ),
            Self::Unreplayed { seq, recorded } => write!(
                f,
                "the code finished at step {seq}, but the history records {recorded} there"
            ),
            Self::Outcome { recorded, replayed } => write!(
                f,
                "the run ended with {recorded}, but the code now ends it with {replayed}"
            ),
            Self::Stopped {
                seq: Some(seq),
                reason,
            } => write!(f, "at step {seq}: {reason}"),
            Self::Stopped { seq: None, reason } => f.write_str(reason),
        }
    }
}

/// A step as a replay check names it: its kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRef {
    /// Its kind.
    pub kind: StepKind,
    /// Its name (an activity's name, a message topic, a change id, …).
    pub name: String,
}

impl StepRef {
    /// A step of this kind and name.
    pub fn new(kind: StepKind, name: &str) -> Self {
        Self {
            kind,
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for StepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind, self.name)
    }
}

/// The store a replay sees: reads go through; writes record nothing. A checkpoint reports
/// success, so the code goes on as if it had been recorded; anything else that would
/// change a run is refused.
#[derive(Debug)]
struct ReadOnly(Arc<dyn Store>);

fn read_only(what: &str) -> Error {
    Error::Invalid(format!("a replay check does not {what}"))
}

#[async_trait]
impl Store for ReadOnly {
    async fn start_run(&self, _run: NewRun) -> Result<StartedRun> {
        Err(read_only("start runs"))
    }

    async fn claim(&self, _request: &ClaimRequest) -> Result<Vec<ClaimedRun>> {
        Ok(Vec::new())
    }

    async fn checkpoint(&self, _checkpoint: Checkpoint) -> Result<DateTime<Utc>> {
        self.0.now().await
    }

    async fn heartbeat(&self, leases: &[Lease], _lease_ttl: Duration) -> Result<Vec<Renewed>> {
        let renewed = leases.iter().map(|lease| Renewed {
            run_id: lease.run_id,
            cancel_requested: None,
        });
        Ok(renewed.collect())
    }

    async fn next_wake_in(&self, _workflows: &[String]) -> Result<Option<Duration>> {
        Ok(None)
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        self.0.now().await
    }

    async fn get_run(&self, workspace: WorkspaceId, id: RunId) -> Result<Option<RunInfo>> {
        self.0.get_run(workspace, id).await
    }

    async fn list_runs(&self, workspace: WorkspaceId, filter: &RunFilter) -> Result<Vec<RunInfo>> {
        self.0.list_runs(workspace, filter).await
    }

    async fn steps(&self, workspace: WorkspaceId, id: RunId) -> Result<Vec<StepRecord>> {
        self.0.steps(workspace, id).await
    }

    async fn cancel_run(&self, _workspace: WorkspaceId, _id: RunId) -> Result<RunStatus> {
        Err(read_only("cancel runs"))
    }

    async fn request_cancel(
        &self,
        _workspace: WorkspaceId,
        _id: RunId,
        _reason: &str,
    ) -> Result<RunStatus> {
        Err(read_only("cancel runs"))
    }

    async fn pause_run(&self, _workspace: WorkspaceId, _id: RunId) -> Result<RunStatus> {
        Err(read_only("pause runs"))
    }

    async fn resume_run(&self, _workspace: WorkspaceId, _id: RunId) -> Result<RunStatus> {
        Err(read_only("resume runs"))
    }

    async fn fork_run(&self, _fork: NewFork) -> Result<RunId> {
        Err(read_only("fork runs"))
    }

    async fn send_message(&self, _message: NewMessage) -> Result<bool> {
        Err(read_only("send messages"))
    }

    async fn next_message(&self, _run: RunId, _topics: &[String]) -> Result<Option<Message>> {
        // Messages a replayed step took are in its record; none is taken anew.
        Ok(None)
    }

    async fn get_event(
        &self,
        workspace: WorkspaceId,
        run: RunId,
        key: &str,
    ) -> Result<Option<Value>> {
        self.0.get_event(workspace, run, key).await
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.0.events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn divergence(mismatch: Mismatch) -> Divergence {
        Divergence {
            run_id: RunId(uuid::Uuid::nil()),
            workflow: "order".to_owned(),
            mismatch,
        }
    }

    #[test]
    fn a_clean_report_says_so() {
        let report = ReplayReport {
            runs_checked: 3,
            divergences: Vec::new(),
        };
        assert_eq!(report.to_string(), "3 runs replayed, no divergence");
        let one = ReplayReport {
            runs_checked: 1,
            divergences: Vec::new(),
        };
        assert_eq!(one.to_string(), "1 run replayed, no divergence");
    }

    #[test]
    fn a_report_names_the_run_the_position_and_both_steps() {
        let report = ReplayReport {
            runs_checked: 2,
            divergences: vec![divergence(Mismatch::Step {
                seq: 0,
                recorded: StepRef::new(StepKind::Activity, "reserve"),
                asked: StepRef::new(StepKind::Activity, "charge"),
            })],
        };
        assert_eq!(
            report.to_string(),
            "2 runs replayed, 1 diverged:\n  run 00000000-0000-0000-0000-000000000000 of \
             `order`: at step 0 the history records activity `reserve`, but the code asks \
             for activity `charge`"
        );
    }

    #[test]
    fn only_finished_runs_are_replayed() {
        let failed = RunFilter::default().status(RunStatus::Failed);
        assert_eq!(finished_status(&failed).unwrap(), RunStatus::Failed);
        assert_eq!(
            finished_status(&RunFilter::default()).unwrap(),
            RunStatus::Completed
        );
        let running = RunFilter::default().status(RunStatus::Running);
        assert!(finished_status(&running).is_err());
    }
}
