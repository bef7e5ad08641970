//! A poison run that kills its worker every time ends parked after `max_attempts` claims.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::poison;
use durable_tests::{Ledger, TestDb, worker_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_kills_its_worker_every_time_is_parked() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handle = client.start(poison, db.url.clone()).await.unwrap();

    // Keep replacing the worker it kills, as a supervisor would, until the run is parked.
    let mut crashes = 0;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = client.get(handle.id()).await.unwrap();
        if info.status == RunStatus::Parked {
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "never parked: {info:?}"
        );
        let mut worker = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_millis(500));
        let parked = async {
            durable_tests::wait::until("the run to be parked", Duration::from_secs(60), || async {
                let s = client.get(handle.id()).await.unwrap().status;
                (s == RunStatus::Parked).then_some(())
            })
            .await
        };
        tokio::select! {
            status = worker.wait_exit(Duration::from_secs(30)) => {
                assert!(!status.success(), "the worker should have died");
                crashes += 1;
            }
            _ = parked => worker.kill().await,
        }
    }
    let info = client.get(handle.id()).await.unwrap();
    let executions = Ledger::at(&db.url)
        .effects(handle.id().0)
        .await
        .unwrap()
        .len();
    println!(
        "worker crashes: {crashes}, activity executions: {executions}, claims: {}",
        info.claims
    );
    assert_eq!(info.claims, 3, "max_attempts = 3");
    assert_eq!(executions, 3, "one execution per claim, then no more");
    assert_eq!(crashes, 3);
    let reason = info.error.unwrap();
    assert!(
        reason.contains("claimed 3 times in a row without progress"),
        "{reason}"
    );
    let err = handle.result().await.unwrap_err();
    assert!(matches!(err, durable::Error::RunParked { .. }), "{err:?}");
}
