//! Durable sleep survives a worker restart and wakes close to its due time.
//!
//! Bound: a worker that starts while a timer is pending sleeps until the timer's due time
//! (capped by its poll interval, 100 ms here), so lateness is that plus one claim.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::sleeper;
use durable_tests::{TestDb, wait, worker_bin};

const LEASE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_survives_a_worker_restart_and_wakes_on_time() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handle = client.start(sleeper, 3_000).await.unwrap();

    let first = WorkerProcess::spawn(worker_bin!(), &db.url, LEASE);
    wait::until("the run to sleep", Duration::from_secs(20), || async {
        let info = client.get(handle.id()).await.unwrap();
        (info.status == RunStatus::Sleeping).then_some(())
    })
    .await;
    first.kill().await;

    let second = WorkerProcess::spawn(worker_bin!(), &db.url, LEASE);
    let (due, woke) = handle
        .result_timeout(Duration::from_secs(20))
        .await
        .unwrap();
    second.kill().await;
    let lateness = woke - due;
    println!("timer due at {due}, woke at {woke}: {lateness} ms late");
    assert!(lateness >= 0, "woke {} ms early", -lateness);
    assert!(lateness < 1_000, "woke {lateness} ms late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_sleep_is_recorded_before_waiting_in_memory() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let worker = durable_tests::worker(db.store().await).build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    let handle = client.start(sleeper, 300).await.unwrap();
    let (due, woke) = handle
        .result_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    stop.cancel();
    task.await.unwrap().unwrap();
    assert!(woke >= due && woke - due < 200, "due {due}, woke {woke}");
    let steps = client.steps(handle.id()).await.unwrap();
    let kinds: Vec<_> = steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["now", "sleep", "now"]);
    assert!(steps[1].wake_at.is_some());
}
