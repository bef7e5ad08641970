//! Many workers: 4 workers × 200 runs × 5 activities; every run completes and no step runs
//! twice when nothing crashed.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, init_tracing, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_share_200_runs_without_running_a_step_twice() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let mut handles = Vec::new();
    for _ in 0..200 {
        let input = StepsInput {
            ledger: db.url.clone(),
            count: 5,
            hang_at: None,
        };
        handles.push(client.start(steps, input).await.unwrap());
    }
    let mut workers = Vec::new();
    for i in 0..4 {
        let w = worker(db.store().await)
            .worker_id(format!("worker-{i}"))
            .concurrency(16)
            .build();
        workers.push((w.shutdown_token(), tokio::spawn(w.run())));
    }
    for handle in &handles {
        let outputs = handle
            .result_timeout(Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(outputs.len(), 5);
    }
    for (stop, task) in workers {
        stop.cancel();
        task.await.unwrap().unwrap();
    }
    let ledger = Ledger::at(&db.url);
    let total = ledger.total().await.unwrap();
    let duplicated = ledger.duplicated_steps().await.unwrap();
    println!("runs: 200, activity executions: {total}, duplicated steps: {duplicated}");
    assert_eq!(total, 1000);
    assert_eq!(duplicated, 0);
    let completed = client
        .list(
            durable::RunFilter::default()
                .status(RunStatus::Completed)
                .limit(1000),
        )
        .await
        .unwrap();
    assert_eq!(completed.len(), 200);
}
