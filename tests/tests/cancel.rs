//! Cooperative cancellation and timeouts, on both stores: a sleeping run learns it is
//! cancelled and cleans up, a timeout does the same, a running activity is told; and a
//! worker process killed during the cleanup, after which the run learns it at the same place.

use std::sync::Arc;
use std::time::Duration;

use durable::prelude::*;
use durable::{RunFilter, StepKind, StepRecord, StepStatus, Store};
use durable_tests::cancelling::{busy, tidy_sleeper, tidy_with_effect};
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{parent_of_sleeper, sleeper};
use durable_tests::{Ledger, TestDb, init_tracing, wait, with_worker_on, worker_bin};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);
const HOUR: u64 = 3_600_000;

async fn sleeping(client: &Client, run: RunId) {
    wait::until("the run to sleep", DEADLINE, || async {
        (client.get(run).await.unwrap().status == RunStatus::Sleeping).then_some(())
    })
    .await;
}

/// The run's steps as (kind, output) pairs.
async fn trail(client: &Client, run: RunId) -> Vec<(StepKind, serde_json::Value)> {
    let steps: Vec<StepRecord> = client.steps(run).await.unwrap();
    steps
        .into_iter()
        .map(|s| (s.kind, s.output.unwrap_or_default()))
        .collect()
}

/// `tidy_sleeper`'s history when its sleep (step 1) was cut short by `reason`.
fn cleaned_up(reason: &str) -> [(StepKind, serde_json::Value); 4] {
    [
        (StepKind::Activity, json!("started")),
        (StepKind::Sleep, json!(null)),
        (
            StepKind::Cancel,
            json!({ "reason": reason, "interrupted": 1 }),
        ),
        (StepKind::Activity, json!("cleanup")),
    ]
}

async fn a_sleeping_run_learns_it_is_cancelled_and_cleans_up(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let run = client.start(tidy_sleeper, HOUR).await.unwrap();
        sleeping(&client, run.id()).await;
        assert_eq!(run.cancel().await.unwrap(), RunStatus::Sleeping);
        let err = run.result_timeout(DEADLINE).await.unwrap_err();
        assert!(matches!(err, durable::Error::RunCancelled(_)), "{err:?}");
        let info = run.info().await.unwrap();
        assert_eq!(info.status, RunStatus::Cancelled);
        assert_eq!(info.error.as_deref(), Some("cancelled by a client"));
        assert_eq!(
            trail(&client, run.id()).await,
            cleaned_up("cancelled by a client")
        );
    })
    .await;
}

async fn a_run_past_its_timeout_is_cancelled_and_cleans_up(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let run = client
            .start(tidy_sleeper, HOUR)
            .timeout(Duration::from_millis(1500))
            .await
            .unwrap();
        let err = run.result_timeout(DEADLINE).await.unwrap_err();
        assert!(matches!(err, durable::Error::RunCancelled(_)), "{err:?}");
        let info = run.info().await.unwrap();
        let deadline = info.deadline.expect("the run has a deadline");
        let reason = format!("timed out: its deadline was {deadline}");
        assert_eq!(info.error.as_deref(), Some(reason.as_str()));
        assert!(info.updated_at >= deadline, "cancelled before its deadline");
        assert_eq!(trail(&client, run.id()).await, cleaned_up(&reason));
    })
    .await;
}

async fn a_parent_that_times_out_cancels_its_children(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let parent = client
            .start(parent_of_sleeper, HOUR)
            .timeout(Duration::from_millis(1500))
            .await
            .unwrap();
        let err = parent.result_timeout(DEADLINE).await.unwrap_err();
        assert!(matches!(err, durable::Error::RunCancelled(_)), "{err:?}");
        let children = client
            .list(RunFilter::default().workflow("sleeper"))
            .await
            .unwrap();
        assert_eq!(children.len(), 1);
        let child = client.handle::<sleeper>(children[0].id);
        let err = child.result_timeout(DEADLINE).await.unwrap_err();
        assert!(matches!(err, durable::Error::RunCancelled(_)), "{err:?}");
    })
    .await;
}

async fn a_running_activity_is_told_and_the_next_step_learns_it(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let run = client.start(busy, ()).await.unwrap();
        let stage: Option<String> = client.get_event(run.id(), "stage", DEADLINE).await.unwrap();
        assert_eq!(stage.as_deref(), Some("working"));
        assert_eq!(run.cancel().await.unwrap(), RunStatus::Running);
        let err = run.result_timeout(DEADLINE).await.unwrap_err();
        assert!(matches!(err, durable::Error::RunCancelled(_)), "{err:?}");
        let steps = trail(&client, run.id()).await;
        assert_eq!(
            steps[1..],
            [
                (StepKind::Activity, json!("stopped when asked")),
                (
                    StepKind::Cancel,
                    json!({ "reason": "cancelled by a client", "interrupted": null })
                ),
            ],
            "the activity's answer is recorded; the step after it never runs"
        );
    })
    .await;
}

async fn a_run_no_worker_started_is_cancelled_at_once(store: Arc<dyn Store>) {
    let client = Client::from_arc(store);
    let run = client.start(tidy_sleeper, HOUR).await.unwrap();
    assert_eq!(run.cancel().await.unwrap(), RunStatus::Cancelled);
    assert!(client.steps(run.id()).await.unwrap().is_empty());
}

async fn terminate_ends_a_run_without_cleanup(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let run = client.start(tidy_sleeper, HOUR).await.unwrap();
        sleeping(&client, run.id()).await;
        assert_eq!(run.terminate().await.unwrap(), RunStatus::Cancelled);
        let steps = client.steps(run.id()).await.unwrap();
        assert_eq!(steps.len(), 2, "no cleanup step: {steps:?}");
        assert!(steps.iter().all(|s| s.status == StepStatus::Completed));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_during_cleanup_is_replaced_and_the_run_learns_it_again() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let ledger = Ledger::at(&db.url);
    let run = client
        .start(tidy_with_effect, db.url.clone())
        .await
        .unwrap();
    let first = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    sleeping(&client, run.id()).await;
    run.cancel().await.unwrap();
    wait::until("the cleanup to start", DEADLINE, || async {
        let effects = ledger.executions_per_step(run.id().0).await.unwrap();
        (effects == [0, 0, 1]).then_some(())
    })
    .await;
    first.kill().await;

    ledger.release(&format!("{}-2", run.id())).await.unwrap();
    let second = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    let err = run.result_timeout(DEADLINE).await.unwrap_err();
    second.kill().await;
    assert!(matches!(err, durable::Error::RunCancelled(_)), "{err:?}");
    let kinds: Vec<StepKind> = client
        .steps(run.id())
        .await
        .unwrap()
        .iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(
        kinds,
        [StepKind::Sleep, StepKind::Cancel, StepKind::Activity],
        "learned at the same place, cleaned up once in the history"
    );
    assert_eq!(
        ledger.executions_per_step(run.id().0).await.unwrap(),
        [0, 0, 2],
        "the cleanup ran again after the crash: at least once"
    );
}

durable_tests::on_both_stores! {
    a_sleeping_run_learns_it_is_cancelled_and_cleans_up,
    a_run_past_its_timeout_is_cancelled_and_cleans_up,
    a_parent_that_times_out_cancels_its_children,
    a_running_activity_is_told_and_the_next_step_learns_it,
    a_run_no_worker_started_is_cancelled_at_once,
    terminate_ends_a_run_without_cleanup,
}
