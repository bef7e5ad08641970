//! Child workflows, on both stores: fan out and join, a failing child, cancelling a parent
//! cancels its children; and a worker process killed while a parent waits for its child.

use std::sync::Arc;
use std::time::Duration;

use durable::prelude::*;
use durable::{RunFilter, RunStatus, Store};
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{
    StepsInput, fan_out, parent_of_sleeper, parent_of_steps, register_all, sleeper,
};
use durable_tests::{Ledger, TestDb, wait, with_worker_using, worker_bin};
use durable_worker::WorkerBuilder;

const DEADLINE: Duration = Duration::from_secs(60);

/// Every test workflow, and many runs at once, so that children do not queue behind the
/// default limit.
fn many_at_once(worker: WorkerBuilder) -> WorkerBuilder {
    register_all(worker).concurrency(64)
}

fn sum_of_squares(n: u64) -> u64 {
    (0..n).map(|x| x * x).sum()
}

async fn fan_out_and_join(store: Arc<dyn Store>, n: u64) {
    with_worker_using(store, many_at_once, |client| async move {
        let started = std::time::Instant::now();
        let handle = client.start(fan_out, n).await.unwrap();
        assert_eq!(
            handle.result_timeout(DEADLINE).await.unwrap(),
            sum_of_squares(n)
        );
        println!(
            "{n} children fanned out and joined in {:?}",
            started.elapsed()
        );
        let children = client
            .list(RunFilter::default().workflow("square").limit(10_000))
            .await
            .unwrap();
        assert_eq!(children.len() as u64, n, "one child per item, none twice");
        assert!(
            children
                .iter()
                .all(|c| c.parent_run_id == Some(handle.id()))
        );
        assert!(children.iter().all(|c| c.status == RunStatus::Completed));
    })
    .await;
}

async fn a_hundred_children_fan_out_and_join(store: Arc<dyn Store>) {
    fan_out_and_join(store, 100).await;
}

async fn cancelling_a_parent_cancels_its_children(store: Arc<dyn Store>) {
    with_worker_using(store, many_at_once, |client| async move {
        let parent = client.start(parent_of_sleeper, 3_600_000).await.unwrap();
        let child = wait::until("the child to sleep", DEADLINE, || async {
            let children = client
                .list(RunFilter::default().workflow("sleeper"))
                .await
                .unwrap();
            children
                .into_iter()
                .find(|c| c.status == RunStatus::Sleeping)
        })
        .await;
        assert_eq!(child.parent_run_id, Some(parent.id()));
        wait::until("the parent to wait for its child", DEADLINE, || async {
            (parent.info().await.unwrap().status == RunStatus::Sleeping).then_some(())
        })
        .await;
        assert_eq!(parent.cancel().await.unwrap(), RunStatus::Sleeping);
        assert!(matches!(
            parent.result_timeout(DEADLINE).await,
            Err(durable::Error::RunCancelled(_))
        ));
        let child = client.handle::<sleeper>(child.id);
        assert!(matches!(
            child.result_timeout(DEADLINE).await,
            Err(durable::Error::RunCancelled(_))
        ));
    })
    .await;
}

async fn pause_parks_and_resume_continues(store: Arc<dyn Store>) {
    with_worker_using(store, many_at_once, |client| async move {
        let run = client.start(parent_of_sleeper, 1_500).await.unwrap();
        wait::until("the parent to wait", DEADLINE, || async {
            (client.get(run.id()).await.unwrap().status == RunStatus::Sleeping).then_some(())
        })
        .await;
        assert_eq!(client.pause(run.id()).await.unwrap(), RunStatus::Parked);
        let info = client.get(run.id()).await.unwrap();
        assert_eq!(info.error.as_deref(), Some("paused by an operator"));
        // The child finishes meanwhile; the paused parent does not move.
        wait::until("the child to finish", DEADLINE, || async {
            let children = client
                .list(RunFilter::default().workflow("sleeper"))
                .await
                .unwrap();
            children
                .iter()
                .any(|c| c.status == RunStatus::Completed)
                .then_some(())
        })
        .await;
        assert_eq!(
            client.get(run.id()).await.unwrap().status,
            RunStatus::Parked
        );
        assert_eq!(client.resume(run.id()).await.unwrap(), RunStatus::Pending);
        let (due, woke) = run.result_timeout(DEADLINE).await.unwrap();
        assert!(woke >= due);
    })
    .await;
}

durable_tests::on_both_stores! {
    a_hundred_children_fan_out_and_join,
    cancelling_a_parent_cancels_its_children,
    pause_parks_and_resume_continues,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_children_fan_out_and_join_on_postgres() {
    let db = TestDb::new().await;
    fan_out_and_join(Arc::new(db.store().await), 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_a_parent_waits_is_replaced() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let ledger = Ledger::at(&db.url);
    let input = StepsInput {
        ledger: db.url.clone(),
        count: 2,
        hang_at: Some(1),
    };
    let parent = client.start(parent_of_steps, input.clone()).await.unwrap();

    let first = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    let child = wait::until("the child to be inside step 1", DEADLINE, || async {
        let children = client
            .list(RunFilter::default().workflow("steps"))
            .await
            .unwrap();
        let child = children.into_iter().next()?;
        (ledger.executions_per_step(child.id.0).await.unwrap().len() == 2).then_some(child)
    })
    .await;
    first.kill().await;

    let second = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    let outputs = parent.result_timeout(DEADLINE).await.unwrap();
    second.kill().await;
    assert_eq!(outputs.len(), 2);
    assert_eq!(
        ledger.executions_per_step(child.id.0).await.unwrap(),
        [1, 2]
    );
    let starts = client
        .steps(parent.id())
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == durable::StepKind::StartChild)
        .count();
    assert_eq!(starts, 1, "the child was started once");
}
