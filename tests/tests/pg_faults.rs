//! Postgres faults under load: the workers' connections killed with `pg_terminate_backend`,
//! and a pool far smaller than the worker's concurrency. Nothing is lost, nothing deadlocks.

use std::time::Duration;

use durable::prelude::*;
use durable::{PgStore, RunHandle};
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, init_tracing, worker};
use tokio_util::sync::CancellationToken;

const RUNS: usize = 60;
const STEPS: u32 = 5;

/// Starts `RUNS` runs of `STEPS` ledger steps.
async fn start_runs(db: &TestDb, client: &Client) -> Vec<RunHandle<Vec<String>>> {
    let mut handles = Vec::new();
    for _ in 0..RUNS {
        let input = StepsInput {
            ledger: db.url.clone(),
            count: STEPS,
            hang_at: None,
        };
        handles.push(client.start(steps, input).await.unwrap());
    }
    handles
}

/// Every run completes with all its steps, and every step ran at least once.
async fn assert_all_completed(db: &TestDb, handles: &[RunHandle<Vec<String>>]) -> i64 {
    for handle in handles {
        let outputs = handle
            .result_timeout(Duration::from_secs(90))
            .await
            .unwrap();
        assert_eq!(outputs.len(), STEPS as usize);
    }
    let ledger = Ledger::at(&db.url);
    for handle in handles {
        let counts = ledger.executions_per_step(handle.id().0).await.unwrap();
        assert!(
            counts.iter().all(|&c| c >= 1),
            "a step never ran: {counts:?}"
        );
    }
    ledger.duplicated_steps().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_workers_connections_under_load_loses_no_run() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handles = start_runs(&db, &client).await;
    let worker_url = format!("{}?application_name=durable-faulty-worker", db.url);
    let store = PgStore::connect(&worker_url).await.unwrap();
    // The test helpers' one-second lease is too short to prove ownership through a storm of
    // killed connections on a loaded machine: give it the margin a deployment would.
    let w = worker(store)
        .concurrency(16)
        .lease_ttl(Duration::from_secs(3))
        .build();
    let stop = w.shutdown_token();
    let task = tokio::spawn(w.run());

    let done = CancellationToken::new();
    let killer = tokio::spawn(kill_worker_connections(db.url.clone(), done.clone()));
    let duplicated = assert_all_completed(&db, &handles).await;
    done.cancel();
    let kills = killer.await.unwrap();
    stop.cancel();
    task.await.unwrap().unwrap();
    println!(
        "runs: {RUNS}, connections terminated: {kills}, lost runs: 0, \
         steps executed more than once (at least once, as promised): {duplicated}"
    );
    assert!(kills > 0, "the fault was injected");
}

/// Terminates every connection of the worker every 150 ms until `done`; returns how many.
async fn kill_worker_connections(url: String, done: CancellationToken) -> i64 {
    let admin = durable_tests::db::connect(&url).await;
    let mut kills = 0;
    while !done.is_cancelled() {
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database()
                   AND application_name = 'durable-faulty-worker'",
                &[],
            )
            .await
            .unwrap();
        kills += row.get::<_, i64>(0);
        tokio::select! {
            _ = done.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(150)) => {}
        }
    }
    kills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_two_connections_serves_fifty_concurrent_runs() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handles = start_runs(&db, &client).await;
    let store = PgStore::builder(&db.url)
        .pool_size(2)
        .connect()
        .await
        .unwrap();
    let w = worker(store).concurrency(50).build();
    let stop = w.shutdown_token();
    let task = tokio::spawn(w.run());
    let duplicated = assert_all_completed(&db, &handles).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    println!("runs: {RUNS}, pool: 2, concurrency: 50, duplicated steps: {duplicated}");
    assert_eq!(duplicated, 0, "with no crash, no step runs twice");
}
