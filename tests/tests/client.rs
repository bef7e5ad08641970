//! The client: listing with filters, workspace scoping, and cancellation that fences the
//! worker running the run.

use std::time::Duration;

use durable::prelude::*;
use durable::{RunFilter, WorkspaceId};
use durable_tests::workflows::{StepsInput, sleeper, steps};
use durable_tests::{Ledger, TestDb, wait, worker};

fn input(db: &TestDb, count: u32, hang_at: Option<u32>) -> StepsInput {
    StepsInput {
        ledger: db.url.clone(),
        count,
        hang_at,
    }
}

#[tokio::test]
async fn list_filters_by_status_and_workflow_newest_first() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let a = client.start(steps, input(&db, 1, None)).await.unwrap();
    let b = client.start(sleeper, 10).await.unwrap();
    let c = client.start(steps, input(&db, 2, None)).await.unwrap();

    let all = client.list(RunFilter::default()).await.unwrap();
    let ids: Vec<_> = all.iter().map(|r| r.id).collect();
    assert_eq!(ids, [c.id(), b.id(), a.id()], "newest first");

    let only_steps = client
        .list(RunFilter::default().workflow("steps"))
        .await
        .unwrap();
    assert_eq!(
        only_steps.iter().map(|r| r.id).collect::<Vec<_>>(),
        [c.id(), a.id()]
    );

    let limited = client.list(RunFilter::default().limit(1)).await.unwrap();
    assert_eq!(limited.len(), 1);

    let pending = client
        .list(RunFilter::default().status(RunStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.len(), 3);
    let done = client
        .list(RunFilter::default().status(RunStatus::Completed))
        .await
        .unwrap();
    assert!(done.is_empty());
}

#[tokio::test]
async fn another_workspace_sees_none_of_the_runs() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let run = client.start(sleeper, 10).await.unwrap();
    let other = client
        .clone()
        .in_workspace(WorkspaceId(uuid::Uuid::new_v4()));
    assert!(other.list(RunFilter::default()).await.unwrap().is_empty());
    assert!(matches!(
        other.get(run.id()).await,
        Err(durable::Error::RunNotFound(_))
    ));
    assert!(matches!(
        other.steps(run.id()).await,
        Err(durable::Error::RunNotFound(_))
    ));
    assert!(matches!(
        other.cancel(run.id()).await,
        Err(durable::Error::RunNotFound(_))
    ));
    assert_eq!(
        client.get(run.id()).await.unwrap().status,
        RunStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_a_running_run_fences_its_worker() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let ledger = Ledger::at(&db.url);
    let handle = client.start(steps, input(&db, 3, Some(1))).await.unwrap();
    let run = handle.id().0;
    let worker = worker(db.store().await).build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    wait::until("step 1 to start", Duration::from_secs(10), || async {
        (ledger.executions_per_step(run).await.unwrap().len() == 2).then_some(())
    })
    .await;

    assert_eq!(handle.terminate().await.unwrap(), RunStatus::Cancelled);
    ledger.release(&format!("{run}-1")).await.unwrap();
    let err = handle
        .result_timeout(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, durable::Error::RunCancelled(_)), "{err:?}");
    // The worker learns of it (heartbeat or refused write) and records nothing more.
    wait::until(
        "the worker to let go of the run",
        Duration::from_secs(10),
        || async {
            let sql = db.client().await;
            let row = sql
                .query_one(
                    "SELECT count(*) FROM durable.steps WHERE run_id = $1",
                    &[&run],
                )
                .await
                .unwrap();
            let recorded: i64 = row.get(0);
            let effects = ledger.executions_per_step(run).await.unwrap();
            (recorded == 1 && effects == [1, 1]).then_some(())
        },
    )
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        client.steps(handle.id()).await.unwrap().len(),
        1,
        "only step 0 is recorded"
    );
    assert_eq!(
        ledger.executions_per_step(run).await.unwrap(),
        [1, 1],
        "step 2 never ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_finished_run_changes_nothing() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let worker = worker(db.store().await).build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    let handle = client.start(steps, input(&db, 1, None)).await.unwrap();
    handle
        .result_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(handle.cancel().await.unwrap(), RunStatus::Completed);
    assert_eq!(
        client.get(handle.id()).await.unwrap().status,
        RunStatus::Completed
    );
    let missing = RunId::new();
    assert!(
        matches!(client.cancel(missing).await, Err(durable::Error::RunNotFound(id)) if id == missing)
    );
}
