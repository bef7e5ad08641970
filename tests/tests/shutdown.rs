//! Graceful shutdown: the worker stops claiming, lets in-flight runs finish within the
//! shutdown timeout, and hands back what did not finish.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, wait, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_runs_finish_and_claims_nothing_new() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let ledger = Ledger::at(&db.url);
    let input = StepsInput {
        ledger: db.url.clone(),
        count: 2,
        hang_at: Some(1),
    };
    let busy = client.start(steps, input).await.unwrap();
    let worker = worker(db.store().await)
        .shutdown_timeout(Duration::from_secs(30))
        .build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    wait::until("step 1 to start", Duration::from_secs(10), || async {
        (ledger.executions_per_step(busy.id().0).await.unwrap().len() == 2).then_some(())
    })
    .await;

    stop.cancel();
    // Started after shutdown began: must not be claimed by this worker.
    let late = client
        .start(
            steps,
            StepsInput {
                ledger: db.url.clone(),
                count: 1,
                hang_at: None,
            },
        )
        .await
        .unwrap();
    ledger.release(&format!("{}-1", busy.id())).await.unwrap();
    task.await.unwrap().unwrap();

    assert_eq!(
        client.get(busy.id()).await.unwrap().status,
        RunStatus::Completed
    );
    assert_eq!(
        client.get(late.id()).await.unwrap().status,
        RunStatus::Pending
    );
}
