//! The database crashes and restarts while runs are in flight: the worker rides it out and
//! every run completes, each step at least once.

use std::time::Duration;

use durable::PgStore;
use durable::prelude::*;
use durable_tests::private_pg::PrivatePostgres;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, init_tracing, wait, worker};

const RUNS: usize = 20;
const STEPS: u32 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_complete_across_a_database_crash_and_restart() {
    init_tracing();
    let server = PrivatePostgres::start().await;
    // The effects go to the shared server: the outside world stays up while the engine's
    // database goes down.
    let outside = TestDb::new().await;
    let ledger = Ledger::at(&outside.url);
    let store = PgStore::connect(&server.url).await.unwrap();
    let client = Client::new(store.clone());
    let mut handles = Vec::new();
    for _ in 0..RUNS {
        let input = StepsInput {
            ledger: outside.url.clone(),
            count: STEPS,
            hang_at: None,
        };
        handles.push(client.start(steps, input).await.unwrap());
    }
    let w = worker(store)
        .concurrency(8)
        .lease_ttl(Duration::from_secs(3))
        .build();
    let stop = w.shutdown_token();
    let task = tokio::spawn(w.run());

    let total = (RUNS * STEPS as usize) as i64;
    let before = wait::until("some steps to run", Duration::from_secs(30), || async {
        let done = ledger.total().await.unwrap();
        (done >= 10).then_some(done)
    })
    .await;
    server.crash_and_restart().await;

    for handle in &handles {
        let outputs = handle
            .result_timeout(Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(outputs.len(), STEPS as usize);
    }
    for handle in &handles {
        let counts = ledger.executions_per_step(handle.id().0).await.unwrap();
        assert_eq!(counts.len(), STEPS as usize);
        assert!(
            counts.iter().all(|&c| c >= 1),
            "a step never ran: {counts:?}"
        );
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    let executed = ledger.total().await.unwrap();
    println!(
        "runs: {RUNS}, steps: {total}, executed before the crash: {before}, \
         executed in all: {executed} ({} again after the crash)",
        executed - total
    );
    assert!(before < total, "the crash came while runs were in flight");
}
