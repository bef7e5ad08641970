//! Fast pickup: a new run wakes an idle worker through NOTIFY long before its next poll, also
//! after the LISTEN connection was killed (the listener reconnects and re-LISTENs).

use std::time::Duration;

use durable::prelude::*;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{TestDb, init_tracing, worker};

/// Far longer than any pickup below: a run picked up in time was woken by a notification.
const POLL: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_wake_idle_workers_even_after_the_listener_is_killed() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let worker = worker(db.store().await).poll_interval(POLL).build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    let input = || StepsInput {
        ledger: db.url.clone(),
        count: 1,
        hang_at: None,
    };

    let started = tokio::time::Instant::now();
    let first = client.start(steps, input()).await.unwrap();
    first.result_timeout(Duration::from_secs(10)).await.unwrap();
    println!("picked up and finished in {:?}", started.elapsed());

    // Kill every LISTEN connection to this database.
    let sql = db.client().await;
    let killed: i64 = sql
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "no LISTEN connection found");

    let started = tokio::time::Instant::now();
    let second = client.start(steps, input()).await.unwrap();
    second
        .result_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    println!(
        "after killing {killed} listener(s): finished in {:?}",
        started.elapsed()
    );
    stop.cancel();
    task.await.unwrap().unwrap();
}
