//! Replay: a run interrupted after 2 of 4 activities resumes and runs only the rest.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, init_tracing, wait, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_run_resumes_and_runs_only_the_remaining_steps() {
    init_tracing();
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

    // First worker: runs steps 0 and 1, then blocks inside step 2.
    let first = worker(db.store().await)
        .shutdown_timeout(Duration::ZERO)
        .build();
    let stop_first = first.shutdown_token();
    let first = tokio::spawn(first.run());
    wait::until("step 2 to start", Duration::from_secs(10), || async {
        let counts = ledger.executions_per_step(run).await.unwrap();
        (counts.len() == 3).then_some(())
    })
    .await;
    // Interrupt it: shutdown hands the unfinished run back.
    stop_first.cancel();
    first.await.unwrap().unwrap();
    assert_eq!(
        client.get(handle.id()).await.unwrap().status,
        RunStatus::Pending
    );
    let recorded = client.steps(handle.id()).await.unwrap();
    assert_eq!(
        recorded.len(),
        2,
        "exactly the 2 finished activities are recorded"
    );

    // Second worker resumes: steps 0 and 1 replay, steps 2 and 3 run.
    let second = worker(db.store().await).build();
    let stop_second = second.shutdown_token();
    let second = tokio::spawn(second.run());
    let outputs = handle
        .result_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    stop_second.cancel();
    second.await.unwrap().unwrap();

    assert_eq!(outputs.len(), 4);
    let counts = ledger.executions_per_step(run).await.unwrap();
    // Step 2 ran twice: once interrupted, once to completion. Steps 0, 1 and 3 once.
    assert_eq!(counts, vec![1, 1, 2, 1], "executions per step");
    assert_eq!(
        outputs[0],
        recorded[0].output.as_ref().unwrap().as_str().unwrap()
    );
}
