//! The store conformance suite: what every [`Store`] must do, written once against the trait
//! and run against each backend by `tests/tests/conformance.rs`. No worker is involved: each
//! body drives the store the way the engine does and checks what it recorded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use durable::store::{
    Checkpoint, ClaimRequest, ClaimedRun, Lease, NewRun, Store, StoreEvent, Transition,
};
use durable::{Error, RunFilter, RunId, RunStatus, StepKind, StepRecord, StepStatus, WorkspaceId};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::wait;

mod messages;
mod schedules;

pub use messages::*;
pub use schedules::*;

/// The workflow the suite's runs belong to.
pub const WORKFLOW: &str = "conformance";

/// The message a run parked for too many claims carries, after "claimed N times".
const PARKED_FOR_CLAIMS: &str = " times in a row without progress (its worker probably crashed \
                                 each time); parked so it stops taking workers down";

/// How long a body waits for something the store's clock must bring about.
const DEADLINE: Duration = Duration::from_secs(10);

/// A lease that ends almost at once, for runs that must become claimable again.
const SHORT_LEASE: Duration = Duration::from_millis(1);

/// A lease that outlasts any body.
const LONG_LEASE: Duration = Duration::from_secs(60);

/// A SQLite database file in a temporary directory: removed when the test passes, kept (and
/// named in the output) when it fails, for inspection.
#[derive(Debug)]
pub struct SqliteFile {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl SqliteFile {
    /// A path for a database file that does not exist yet.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("durable-test-")
            .tempdir()
            .expect("create a temporary directory");
        let path = dir.path().join("durable.db");
        Self {
            dir: Some(dir),
            path,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its URL (`sqlite:///abs/path`), for `durable::store::connect` and worker processes.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    /// A store on it (opening creates and migrates it).
    pub async fn store(&self) -> durable::SqliteStore {
        durable::SqliteStore::open(&self.path)
            .await
            .expect("open the test SQLite database")
    }
}

impl Default for SqliteFile {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "test failed: its SQLite database is kept in {}",
                kept.display()
            );
        }
    }
}

fn new_run(workflow_id: &str, workflow_name: &str, max_claims: u32) -> NewRun {
    NewRun {
        id: RunId::new(),
        workspace_id: WorkspaceId::DEFAULT,
        workflow_id: workflow_id.to_owned(),
        workflow_name: workflow_name.to_owned(),
        workflow_version: 1,
        input: json!({ "workflow_id": workflow_id }),
        max_claims,
        parent_run_id: None,
        timeout: None,
    }
}

/// Starts a run of [`WORKFLOW`] that parks after `max_claims` claims without progress.
async fn start(store: &Arc<dyn Store>, workflow_id: &str, max_claims: u32) -> RunId {
    let started = store
        .start_run(new_run(workflow_id, WORKFLOW, max_claims))
        .await
        .unwrap();
    assert!(started.created, "{workflow_id} was new");
    started.id
}

fn request(worker_id: &str, workflows: &[&str], limit: u32, lease_ttl: Duration) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker_id.to_owned(),
        workflows: workflows.iter().map(|w| (*w).to_owned()).collect(),
        limit,
        lease_ttl,
        running: Vec::new(),
    }
}

/// Claims one run of [`WORKFLOW`], which must be claimable now.
async fn claim_one(store: &Arc<dyn Store>, lease_ttl: Duration) -> ClaimedRun {
    let mut claimed = store
        .claim(&request("w", &[WORKFLOW], 1, lease_ttl))
        .await
        .unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "expected one claimable run, got {claimed:?}"
    );
    claimed.remove(0)
}

/// Waits until a run of [`WORKFLOW`] is claimable (a lease expires, a timer falls due) and
/// claims it.
async fn claim_when_due(store: &Arc<dyn Store>, what: &str, lease_ttl: Duration) -> ClaimedRun {
    wait::until(what, DEADLINE, || async {
        let claimed = store
            .claim(&request("w", &[WORKFLOW], 1, lease_ttl))
            .await
            .unwrap();
        claimed.into_iter().next()
    })
    .await
}

/// The runs whose lease a heartbeat extends.
async fn renewed(store: &Arc<dyn Store>, leases: &[Lease]) -> Vec<RunId> {
    let renewed = store.heartbeat(leases, LONG_LEASE).await.unwrap();
    renewed.into_iter().map(|r| r.run_id).collect()
}

async fn nothing_claimable(store: &Arc<dyn Store>) -> bool {
    store
        .claim(&request("w", &[WORKFLOW], 10, LONG_LEASE))
        .await
        .unwrap()
        .is_empty()
}

/// A completed activity step; times are the store's, so they round-trip exactly.
async fn step(store: &Arc<dyn Store>, seq: u32, status: StepStatus, attempts: u32) -> StepRecord {
    let now = store.now().await.unwrap();
    let completed = status == StepStatus::Completed;
    StepRecord {
        seq,
        name: format!("step-{seq}"),
        kind: StepKind::Activity,
        status,
        output: completed.then(|| json!({ "seq": seq, "attempts": attempts })),
        error: (!completed).then(|| json!({ "message": "upstream unavailable" })),
        attempts,
        wake_at: (status == StepStatus::Retrying).then(|| now + Duration::from_secs(1)),
        first_attempt_at: Some(now),
    }
}

fn checkpoint(lease: Lease, steps: Vec<StepRecord>, transition: Transition) -> Checkpoint {
    Checkpoint {
        steps,
        ..Checkpoint::transition(lease, transition, LONG_LEASE)
    }
}

async fn info(store: &Arc<dyn Store>, id: RunId) -> durable::RunInfo {
    store
        .get_run(WorkspaceId::DEFAULT, id)
        .await
        .unwrap()
        .expect("the run exists")
}

async fn recorded(store: &Arc<dyn Store>, id: RunId) -> Vec<StepRecord> {
    store.steps(WorkspaceId::DEFAULT, id).await.unwrap()
}

fn assert_lease_lost(result: durable::Result<impl std::fmt::Debug>, run: RunId) {
    match result {
        Err(Error::LeaseLost(id)) => assert_eq!(id, run),
        other => panic!("expected LeaseLost({run}), got {other:?}"),
    }
}

/// Two claimers racing over the same runs: each run is claimed exactly once.
pub async fn claim_is_atomic(store: Arc<dyn Store>) {
    let mut started = Vec::new();
    for i in 0..30 {
        started.push(start(&store, &format!("race-{i}"), 3).await);
    }
    let claimers = ["a", "b"].map(|worker| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim(&request(worker, &[WORKFLOW], 4, LONG_LEASE))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch);
            }
        })
    });
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.unwrap());
    }
    let mut ids: Vec<RunId> = claimed.iter().map(|c| c.info.id).collect();
    ids.sort();
    started.sort();
    assert_eq!(ids, started, "every run claimed exactly once");
    for run in &claimed {
        assert_eq!(run.info.status, RunStatus::Running);
        assert_eq!((run.lease.epoch, run.info.claims), (1, 1), "{:?}", run.info);
    }
    assert!(nothing_claimable(&store).await);
}

/// A write with an old epoch is refused and changes nothing; so is its heartbeat.
pub async fn fencing_refuses_an_old_epoch(store: Arc<dyn Store>) {
    let id = start(&store, "fenced", 5).await;
    let old = claim_one(&store, SHORT_LEASE).await.lease;
    let new = claim_when_due(&store, "the short lease to expire", LONG_LEASE)
        .await
        .lease;
    assert_eq!(new.epoch, old.epoch + 1);

    let steps = vec![step(&store, 0, StepStatus::Completed, 1).await];
    let stale = checkpoint(
        old,
        steps,
        Transition::Complete {
            output: json!("zombie"),
        },
    );
    assert_lease_lost(store.checkpoint(stale).await, id);
    assert!(
        recorded(&store, id).await.is_empty(),
        "the refused steps were not recorded"
    );
    let run = info(&store, id).await;
    assert_eq!((run.status, run.output), (RunStatus::Running, None));

    assert!(
        store
            .heartbeat(&[old], LONG_LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(renewed(&store, &[old, new]).await, vec![id]);
    let done = checkpoint(
        new,
        Vec::new(),
        Transition::Complete {
            output: json!("current"),
        },
    );
    store.checkpoint(done).await.unwrap();
    assert_eq!(info(&store, id).await.output, Some(json!("current")));
}

/// Checkpoints of many runs at once, which a store may write together: each is fenced by its
/// own lease, each current one is recorded with its own transition, and a finished child
/// still tells its parent.
pub async fn concurrent_checkpoints_are_each_fenced_and_recorded(store: Arc<dyn Store>) {
    let parent = start(&store, "batch-parent", 5).await;
    let child = NewRun {
        parent_run_id: Some(parent),
        ..new_run("batch-child", WORKFLOW, 5)
    };
    let child = store.start_run(child).await.unwrap().id;
    for i in 0..30 {
        start(&store, &format!("batch-{i}"), 5).await;
    }
    let claimed = store
        .claim(&request("w", &[WORKFLOW], 100, LONG_LEASE))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 32);
    let later = store.now().await.unwrap() + LONG_LEASE;
    let done = json!("done");
    let recorded_step = step(&store, 0, StepStatus::Completed, 1).await;

    let mut writes = Vec::new();
    let mut expected = Vec::new();
    for (i, run) in claimed.iter().enumerate() {
        let (lease, transition, status) = match i % 4 {
            _ if run.info.id == parent => {
                (run.lease, Transition::Continue, Some(RunStatus::Running))
            }
            _ if run.info.id == child => (
                run.lease,
                Transition::Complete {
                    output: done.clone(),
                },
                Some(RunStatus::Completed),
            ),
            0 => {
                let stale = Lease {
                    epoch: run.lease.epoch - 1,
                    ..run.lease
                };
                (stale, Transition::Continue, None)
            }
            1 => (run.lease, Transition::Continue, Some(RunStatus::Running)),
            2 => (
                run.lease,
                Transition::Sleep { wake_at: later },
                Some(RunStatus::Sleeping),
            ),
            _ => (
                run.lease,
                Transition::Complete { output: json!(i) },
                Some(RunStatus::Completed),
            ),
        };
        writes.push(store.checkpoint(checkpoint(lease, vec![recorded_step.clone()], transition)));
        expected.push((run.info.id, status));
    }
    let results = futures::future::join_all(writes).await;

    for ((id, status), result) in expected.into_iter().zip(results) {
        let steps = recorded(&store, id).await;
        match status {
            None => {
                assert_lease_lost(result, id);
                assert!(steps.is_empty(), "a refused checkpoint recorded nothing");
                assert_eq!(info(&store, id).await.status, RunStatus::Running);
            }
            Some(status) => {
                result.unwrap();
                assert_eq!(steps, vec![recorded_step.clone()], "{id}");
                assert_eq!(info(&store, id).await.status, status, "{id}");
            }
        }
    }
    let told = store
        .next_message(parent, &[format!("child:{child}")])
        .await
        .unwrap()
        .expect("the finished child told its parent");
    assert_eq!(told.payload, json!({ "ok": done }));
}

/// A run whose lease expired is claimable again, with the next epoch and one more claim.
pub async fn expired_lease_makes_a_run_claimable_again(store: Arc<dyn Store>) {
    let id = start(&store, "expiring", 5).await;
    let lease_ttl = Duration::from_secs(2);
    let first = claim_one(&store, lease_ttl).await;
    assert_eq!((first.lease.epoch, first.info.claims), (1, 1));
    assert!(nothing_claimable(&store).await, "the lease still holds");

    let second = claim_when_due(&store, "the lease to expire", LONG_LEASE).await;
    assert_eq!(second.info.id, id);
    assert_eq!((second.lease.epoch, second.info.claims), (2, 2));
    let expired_at = first.db_now + lease_ttl;
    assert!(
        second.db_now >= expired_at,
        "reclaimed before the lease ended"
    );
}

/// A worker does not claim again a run it says it is executing, even once the lease has run
/// out, and its late heartbeat still extends the lease. Other expired runs it takes.
pub async fn a_claimer_skips_the_expired_runs_it_is_executing(store: Arc<dyn Store>) {
    let executing = start(&store, "slow-heartbeat", 5).await;
    let abandoned = start(&store, "abandoned", 5).await;
    let first = store
        .claim(&request("w", &[WORKFLOW], 2, SHORT_LEASE))
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    wait::until("the leases to run out", DEADLINE, || async {
        let now = store.now().await.unwrap();
        (now > first[1].db_now + SHORT_LEASE).then_some(())
    })
    .await;

    let again = ClaimRequest {
        running: vec![executing],
        ..request("w", &[WORKFLOW], 10, LONG_LEASE)
    };
    let taken: Vec<RunId> = store
        .claim(&again)
        .await
        .unwrap()
        .iter()
        .map(|c| c.info.id)
        .collect();
    assert_eq!(taken, vec![abandoned], "only the run it is not executing");
    let lease = first.iter().find(|c| c.info.id == executing).unwrap().lease;
    let alive = renewed(&store, &[lease]).await;
    assert_eq!(alive, vec![executing], "a late heartbeat extends the lease");
    assert!(nothing_claimable(&store).await, "the extended lease holds");
}

/// A sleeping run is not claimable before its `wake_at` and is after, by the store's clock.
pub async fn timers_wake_sleeping_runs_when_due(store: Arc<dyn Store>) {
    let workflows = [WORKFLOW.to_owned()];
    let id = start(&store, "sleeper", 5).await;
    assert_eq!(
        store.next_wake_in(&workflows).await.unwrap(),
        None,
        "nothing sleeps"
    );
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let wake_at = store.now().await.unwrap() + Duration::from_secs(1);
    store
        .checkpoint(checkpoint(lease, Vec::new(), Transition::Sleep { wake_at }))
        .await
        .unwrap();

    let run = info(&store, id).await;
    assert_eq!(
        (run.status, run.wake_at),
        (RunStatus::Sleeping, Some(wake_at))
    );
    assert!(
        nothing_claimable(&store).await,
        "claimable before its wake_at"
    );
    let due_in = store
        .next_wake_in(&workflows)
        .await
        .unwrap()
        .expect("a run sleeps");
    assert!(
        due_in > Duration::ZERO && due_in <= Duration::from_secs(1),
        "{due_in:?}"
    );
    assert_eq!(
        store.next_wake_in(&["other".to_owned()]).await.unwrap(),
        None
    );

    let woken = claim_when_due(&store, "the timer to fall due", LONG_LEASE).await;
    assert_eq!(woken.info.id, id);
    assert!(
        woken.db_now >= wake_at,
        "woke at {} before {wake_at}",
        woken.db_now
    );
    assert_eq!(
        (woken.info.status, woken.info.wake_at),
        (RunStatus::Running, None)
    );
    assert_eq!(woken.lease.epoch, lease.epoch + 1);
    assert_eq!(store.next_wake_in(&workflows).await.unwrap(), None);
}

/// Every claim counts; a claim of a run out of claims parks it with the reason instead.
pub async fn claims_count_and_park_at_the_limit(store: Arc<dyn Store>) {
    let id = start(&store, "poison", 2).await;
    assert_eq!(claim_one(&store, SHORT_LEASE).await.info.claims, 1);
    let second = claim_when_due(&store, "the first lease to expire", SHORT_LEASE).await;
    assert_eq!(second.info.claims, 2);

    let parked = claim_when_due(&store, "the second lease to expire", LONG_LEASE).await;
    assert_eq!(parked.info.id, id);
    assert_eq!(parked.info.status, RunStatus::Parked);
    assert_eq!(parked.info.claims, 2);
    assert!(parked.history.is_empty());
    let expected = format!("claimed 2{PARKED_FOR_CLAIMS}");
    assert_eq!(parked.info.error.as_deref(), Some(expected.as_str()));
    assert_eq!(info(&store, id).await.status, RunStatus::Parked);
    assert!(
        nothing_claimable(&store).await,
        "a parked run is not claimed"
    );
    let late = checkpoint(second.lease, Vec::new(), Transition::Continue);
    assert_lease_lost(store.checkpoint(late).await, id);
}

/// A checkpoint is progress: it resets the count of claims in a row.
pub async fn a_checkpoint_resets_the_claim_count(store: Arc<dyn Store>) {
    let id = start(&store, "progressing", 2).await;
    claim_one(&store, SHORT_LEASE).await;
    let second = claim_when_due(&store, "the first lease to expire", LONG_LEASE).await;
    assert_eq!(second.info.claims, 2);
    let steps = vec![step(&store, 0, StepStatus::Completed, 1).await];
    let progress = Checkpoint {
        lease_ttl: SHORT_LEASE,
        ..checkpoint(second.lease, steps, Transition::Continue)
    };
    store.checkpoint(progress).await.unwrap();
    assert_eq!(info(&store, id).await.claims, 0);

    let third = claim_when_due(&store, "the lease to expire", LONG_LEASE).await;
    assert_eq!(
        (third.info.status, third.info.claims),
        (RunStatus::Running, 1)
    );
    assert_eq!(third.history.len(), 1);
}

/// Starting the same workflow id again returns the existing run.
pub async fn start_is_idempotent(store: Arc<dyn Store>) {
    let first = store
        .start_run(new_run("order-42", WORKFLOW, 3))
        .await
        .unwrap();
    let again = NewRun {
        input: json!("another input"),
        ..new_run("order-42", "another-workflow", 3)
    };
    let second = store.start_run(again).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(second.id, first.id);
    assert_eq!(
        second.workflow_name, WORKFLOW,
        "the existing run's workflow"
    );
    assert_eq!(
        second.input,
        json!({ "workflow_id": "order-42" }),
        "the existing run's input"
    );
    let runs = store
        .list_runs(WorkspaceId::DEFAULT, &RunFilter::default())
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].workflow_id, "order-42");
}

/// Listing filters by status and workflow, honours the limit, and puts the newest first.
pub async fn list_filters_and_orders_newest_first(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for (workflow_id, name) in [
        ("a1", "alpha"),
        ("a2", "alpha"),
        ("a3", "alpha"),
        ("b1", "beta"),
        ("b2", "beta"),
    ] {
        ids.push(
            store
                .start_run(new_run(workflow_id, name, 3))
                .await
                .unwrap()
                .id,
        );
    }
    let [a1, a2, a3, b1, b2] = ids[..] else {
        unreachable!()
    };
    let lease = store
        .claim(&request("w", &["beta"], 1, LONG_LEASE))
        .await
        .unwrap()[0]
        .lease;
    assert_eq!(
        lease.run_id, b1,
        "the oldest claimable run is claimed first"
    );
    store
        .checkpoint(checkpoint(
            lease,
            Vec::new(),
            Transition::Complete { output: json!(1) },
        ))
        .await
        .unwrap();

    let list = |filter: RunFilter| {
        let store = store.clone();
        async move {
            let runs = store
                .list_runs(WorkspaceId::DEFAULT, &filter)
                .await
                .unwrap();
            runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(RunFilter::default()).await, [b2, b1, a3, a2, a1]);
    assert_eq!(
        list(RunFilter::default().status(RunStatus::Completed)).await,
        [b1]
    );
    assert_eq!(
        list(RunFilter::default().status(RunStatus::Pending)).await,
        [b2, a3, a2, a1]
    );
    assert_eq!(
        list(RunFilter::default().workflow("alpha")).await,
        [a3, a2, a1]
    );
    assert_eq!(list(RunFilter::default().limit(2)).await, [b2, b1]);
    let pending_beta = RunFilter::default()
        .workflow("beta")
        .status(RunStatus::Pending);
    assert_eq!(list(pending_beta).await, [b2]);
    assert!(
        list(RunFilter::default().workflow("gamma"))
            .await
            .is_empty()
    );
}

/// Reads and cancels are scoped by workspace: another workspace sees nothing.
pub async fn reads_are_scoped_by_workspace(store: Arc<dyn Store>) {
    let id = start(&store, "tenant-run", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let steps = vec![step(&store, 0, StepStatus::Completed, 1).await];
    store
        .checkpoint(checkpoint(lease, steps, Transition::Continue))
        .await
        .unwrap();

    let other = WorkspaceId(uuid::Uuid::new_v4());
    assert!(store.get_run(other, id).await.unwrap().is_none());
    assert!(store.steps(other, id).await.unwrap().is_empty());
    assert!(
        store
            .list_runs(other, &RunFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(store.cancel_run(other, id).await, Err(Error::RunNotFound(r)) if r == id));
    assert_eq!(
        info(&store, id).await.status,
        RunStatus::Running,
        "the other workspace's cancel did nothing"
    );
    assert_eq!(recorded(&store, id).await.len(), 1);
    assert_eq!(
        store
            .list_runs(WorkspaceId::DEFAULT, &RunFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Cancelling fences the lease holder; cancelling a finished run returns its status unchanged.
pub async fn cancel_fences_the_holder_and_leaves_finished_runs(store: Arc<dyn Store>) {
    let running = start(&store, "to-cancel", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let cancel = |id| store.cancel_run(WorkspaceId::DEFAULT, id);
    assert_eq!(cancel(running).await.unwrap(), RunStatus::Cancelled);
    let late = checkpoint(
        lease,
        Vec::new(),
        Transition::Complete {
            output: json!("late"),
        },
    );
    assert_lease_lost(store.checkpoint(late).await, running);
    assert!(
        store
            .heartbeat(&[lease], LONG_LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let run = info(&store, running).await;
    assert_eq!((run.status, run.output), (RunStatus::Cancelled, None));
    assert_eq!(cancel(running).await.unwrap(), RunStatus::Cancelled);
    assert!(
        nothing_claimable(&store).await,
        "a cancelled run is not claimed"
    );

    let pending = start(&store, "cancel-pending", 3).await;
    assert_eq!(cancel(pending).await.unwrap(), RunStatus::Cancelled);

    let finished = start(&store, "finished", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let done = checkpoint(
        lease,
        Vec::new(),
        Transition::Complete {
            output: json!("done"),
        },
    );
    store.checkpoint(done).await.unwrap();
    assert_eq!(cancel(finished).await.unwrap(), RunStatus::Completed);
    assert_eq!(info(&store, finished).await.output, Some(json!("done")));

    let missing = RunId::new();
    assert!(matches!(cancel(missing).await, Err(Error::RunNotFound(r)) if r == missing));
}

/// Asking to cancel ends a run no worker started at once; a running one keeps its lease and
/// learns the reason through its heartbeat, and if it goes to sleep before its workflow
/// learned it, it is due at once; so is a sleeping one, with the reason in its claim; once
/// the workflow learned it, it sleeps as asked; a checkpoint that cancels finishes it.
pub async fn asking_to_cancel_ends_unstarted_runs_and_tells_the_others(store: Arc<dyn Store>) {
    let ask = |id| store.request_cancel(WorkspaceId::DEFAULT, id, "not needed");
    let unstarted = start(&store, "never-claimed", 3).await;
    assert_eq!(ask(unstarted).await.unwrap(), RunStatus::Cancelled);

    let running = start(&store, "busy", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    assert_eq!(ask(running).await.unwrap(), RunStatus::Running);
    let renewed = store.heartbeat(&[lease], LONG_LEASE).await.unwrap();
    assert_eq!(renewed[0].cancel_requested.as_deref(), Some("not needed"));
    let hour = store.now().await.unwrap() + Duration::from_secs(3600);
    let sleep = Transition::Sleep { wake_at: hour };
    store
        .checkpoint(checkpoint(lease, Vec::new(), sleep.clone()))
        .await
        .unwrap();
    let woken = claim_one(&store, LONG_LEASE).await;
    assert_eq!(
        woken.info.id, running,
        "a sleep before learning it is due at once"
    );
    let cleanup_sleep = Checkpoint {
        cancel_seen: true,
        ..checkpoint(woken.lease, Vec::new(), sleep)
    };
    store.checkpoint(cleanup_sleep).await.unwrap();
    assert!(
        nothing_claimable(&store).await,
        "once it learned it, a sleep lasts"
    );

    let sleeping = start(&store, "napping", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let sleep = Transition::Sleep {
        wake_at: store.now().await.unwrap() + Duration::from_secs(3600),
    };
    store
        .checkpoint(checkpoint(lease, Vec::new(), sleep))
        .await
        .unwrap();
    assert_eq!(ask(sleeping).await.unwrap(), RunStatus::Sleeping);
    let woken = claim_one(&store, LONG_LEASE).await;
    assert_eq!(woken.info.id, sleeping, "due at once");
    assert_eq!(woken.info.cancel_requested.as_deref(), Some("not needed"));
    let cancel = Transition::Cancel {
        reason: "not needed".to_owned(),
    };
    store
        .checkpoint(checkpoint(woken.lease, Vec::new(), cancel))
        .await
        .unwrap();
    let run = info(&store, sleeping).await;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.error.as_deref(), Some("not needed"));
    assert_eq!(ask(sleeping).await.unwrap(), RunStatus::Cancelled);
}

/// A released run is pending again, gives back its claim, and keeps its steps.
pub async fn release_makes_a_run_pending_again(store: Arc<dyn Store>) {
    let id = start(&store, "released", 3).await;
    let first = claim_one(&store, LONG_LEASE).await;
    assert_eq!(first.info.claims, 1);
    let steps = vec![step(&store, 0, StepStatus::Completed, 1).await];
    store
        .checkpoint(checkpoint(first.lease, steps.clone(), Transition::Release))
        .await
        .unwrap();

    let run = info(&store, id).await;
    assert_eq!((run.status, run.claims), (RunStatus::Pending, 0));
    let again = claim_one(&store, LONG_LEASE).await;
    assert_eq!(again.info.id, id);
    assert_eq!(
        (again.lease.epoch, again.info.claims),
        (first.lease.epoch + 1, 1)
    );
    assert_eq!(again.history, steps, "the history comes with the claim");
}

/// One checkpoint records its steps and the run's final state together.
pub async fn checkpoint_records_steps_and_transition_together(store: Arc<dyn Store>) {
    let id = start(&store, "complete", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let steps = vec![
        step(&store, 0, StepStatus::Completed, 1).await,
        step(&store, 1, StepStatus::Completed, 2).await,
    ];
    let output = json!({ "receipt": "r-1", "items": [1, 2, 3] });
    let complete = checkpoint(
        lease,
        steps.clone(),
        Transition::Complete {
            output: output.clone(),
        },
    );
    let db_now = store.checkpoint(complete).await.unwrap();

    assert_eq!(recorded(&store, id).await, steps);
    let run = info(&store, id).await;
    assert_eq!(
        (run.status, run.output, run.error),
        (RunStatus::Completed, Some(output), None)
    );
    assert_eq!(
        run.updated_at, db_now,
        "the checkpoint returns the time it wrote"
    );
    assert!(nothing_claimable(&store).await);
    assert_lease_lost(
        store
            .checkpoint(checkpoint(lease, Vec::new(), Transition::Continue))
            .await,
        id,
    );
}

/// A failing or parking checkpoint records why.
pub async fn fail_and_park_record_their_reason(store: Arc<dyn Store>) {
    let failed = start(&store, "failing", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let fail = checkpoint(
        lease,
        Vec::new(),
        Transition::Fail {
            error: "card declined".into(),
        },
    );
    store.checkpoint(fail).await.unwrap();
    let run = info(&store, failed).await;
    assert_eq!(
        (run.status, run.error.as_deref()),
        (RunStatus::Failed, Some("card declined"))
    );

    let parked = start(&store, "parking", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let park = checkpoint(
        lease,
        Vec::new(),
        Transition::Park {
            reason: "non-determinism".into(),
        },
    );
    store.checkpoint(park).await.unwrap();
    let run = info(&store, parked).await;
    assert_eq!(
        (run.status, run.error.as_deref()),
        (RunStatus::Parked, Some("non-determinism"))
    );
}

/// A step is upserted by sequence number: retrying, then completed, is one row.
pub async fn steps_are_upserted_by_sequence_number(store: Arc<dyn Store>) {
    let id = start(&store, "retrying", 3).await;
    let lease = claim_one(&store, LONG_LEASE).await.lease;
    let retrying = step(&store, 0, StepStatus::Retrying, 1).await;
    store
        .checkpoint(checkpoint(
            lease,
            vec![retrying.clone()],
            Transition::Continue,
        ))
        .await
        .unwrap();
    assert_eq!(recorded(&store, id).await, std::slice::from_ref(&retrying));

    let completed = StepRecord {
        status: StepStatus::Completed,
        output: Some(json!("ok")),
        error: None,
        attempts: 2,
        wake_at: None,
        ..retrying.clone()
    };
    store
        .checkpoint(checkpoint(
            lease,
            vec![completed.clone()],
            Transition::Continue,
        ))
        .await
        .unwrap();
    assert_eq!(recorded(&store, id).await, [completed]);
    assert_eq!(
        info(&store, id).await.status,
        RunStatus::Running,
        "Continue keeps the lease"
    );
    assert_eq!(renewed(&store, &[lease]).await, vec![id]);
}

/// Runs of workflows the claimer cannot run are left alone.
pub async fn claims_only_take_the_named_workflows(store: Arc<dyn Store>) {
    let other = store
        .start_run(new_run("other", "not-mine", 3))
        .await
        .unwrap()
        .id;
    assert!(nothing_claimable(&store).await);
    assert!(
        store
            .claim(&request("w", &[], 10, LONG_LEASE))
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim(&request("w", &["not-mine", WORKFLOW], 10, LONG_LEASE))
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.info.id).collect::<Vec<_>>(),
        [other]
    );
    assert_eq!(claimed[0].info.input, json!({ "workflow_id": "other" }));
    assert_eq!(claimed[0].info.workflow_version, 1);
}

/// A run that finishes is announced to subscribers. Events are hints, which a subscriber
/// may miss while the store sets up its notifications, so runs keep finishing until one is
/// announced.
pub async fn finished_runs_are_announced(store: Arc<dyn Store>) {
    let mut events = store.events();
    let mut finished = Vec::new();
    let give_up = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < give_up {
        let id = start(&store, &format!("announced-{}", finished.len()), 3).await;
        let lease = claim_one(&store, LONG_LEASE).await.lease;
        let done = checkpoint(
            lease,
            Vec::new(),
            Transition::Complete {
                output: Value::Null,
            },
        );
        store.checkpoint(done).await.unwrap();
        finished.push(id);
        let announced = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match events.recv().await {
                    Ok(StoreEvent::RunFinished(run)) if finished.contains(&run) => return,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => panic!("the event channel closed"),
                }
            }
        });
        if announced.await.is_ok() {
            return;
        }
    }
    panic!(
        "none of {} finished runs was announced within {DEADLINE:?}",
        finished.len()
    );
}
