//! Crash: a worker process killed with SIGKILL in the middle of an activity; a second worker
//! process finishes the run without re-running the activities that had completed.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, wait, worker_bin};

const LEASE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_is_replaced_and_completed_steps_are_not_rerun() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let ledger = Ledger::at(&db.url);
    let input = StepsInput {
        ledger: db.url.clone(),
        count: 4,
        hang_at: Some(2),
    };
    let handle = client.start(steps, input).await.unwrap();
    let run = handle.id().0;

    let first = WorkerProcess::spawn(worker_bin!(), &db.url, LEASE);
    let first_pid = first.pid();
    wait::until(
        "the first worker to be inside step 2",
        Duration::from_secs(20),
        || async { (ledger.executions_per_step(run).await.unwrap().len() == 3).then_some(()) },
    )
    .await;
    first.kill().await;

    let second = WorkerProcess::spawn(worker_bin!(), &db.url, LEASE);
    let outputs = handle
        .result_timeout(Duration::from_secs(20))
        .await
        .unwrap();
    let second_pid = second.pid();
    second.kill().await;

    let counts = ledger.executions_per_step(run).await.unwrap();
    println!("executions per step: {counts:?} (first worker {first_pid}, second {second_pid})");
    assert_eq!(
        counts,
        vec![1, 1, 2, 1],
        "only the interrupted step ran again"
    );
    // Steps 0 and 1 keep the first worker's results; 2 and 3 are the second worker's.
    assert_eq!(
        outputs,
        vec![
            format!("0@{first_pid}"),
            format!("1@{first_pid}"),
            format!("2@{second_pid}"),
            format!("3@{second_pid}"),
        ]
    );
    let info = client.get(handle.id()).await.unwrap();
    assert_eq!(info.status, RunStatus::Completed);
}
