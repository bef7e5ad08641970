//! Retries: backoff with jitter, a durable attempt count across a crash, terminal errors that
//! stop retrying, and `on_exhausted = pause` that parks the run.

use std::sync::Arc;
use std::time::Duration;

use durable::prelude::*;
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{FlakyInput, flaky, flaky_pause, flaky_slow};
use durable_tests::{Ledger, TestDb, init_tracing, wait, with_worker_on, worker_bin};

fn input(db: &TestDb, failures: u32, terminal: bool) -> FlakyInput {
    FlakyInput {
        ledger: db.url.clone(),
        failures,
        terminal,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_errors_are_retried_with_growing_jittered_backoff() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handle = client.start(flaky, input(&db, 2, false)).await.unwrap();
    let attempt = with_worker_on(Arc::new(db.store().await), |_| {
        handle.result_timeout(Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert_eq!(attempt, 3, "succeeded on the third attempt");

    let effects = Ledger::at(&db.url).effects(handle.id().0).await.unwrap();
    let attempts: Vec<_> = effects.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    // Policy: initial 50 ms, ×2, jitter ±20 %: delays of 40–60 ms, then 80–120 ms. A gap is
    // the delay plus the attempt's own overhead, so the lower bounds are exact; the upper
    // ones leave room for a loaded machine.
    let gap = |i: usize| (effects[i + 1].at_us - effects[i].at_us) / 1000.0;
    println!("gaps between attempts: {:.1} ms, {:.1} ms", gap(0), gap(1));
    assert!(
        (40.0..560.0).contains(&gap(0)),
        "first gap {:.1} ms",
        gap(0)
    );
    assert!(
        (80.0..620.0).contains(&gap(1)),
        "second gap {:.1} ms",
        gap(1)
    );
    let steps = client.steps(handle.id()).await.unwrap();
    assert_eq!(steps[0].attempts, 3);
    assert_eq!(steps[0].status, durable::StepStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_error_stops_retries_and_fails_the_run() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handle = client.start(flaky, input(&db, 0, true)).await.unwrap();
    let err = with_worker_on(Arc::new(db.store().await), |_| {
        handle.result_timeout(Duration::from_secs(10))
    })
    .await
    .unwrap_err();
    assert!(matches!(err, durable::Error::RunFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("card declined"), "{err}");
    let effects = Ledger::at(&db.url).effects(handle.id().0).await.unwrap();
    assert_eq!(effects.len(), 1, "a terminal error is not retried");
    let steps = client.steps(handle.id()).await.unwrap();
    assert_eq!(steps[0].status, durable::StepStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fail_the_run_after_max_attempts() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handle = client.start(flaky, input(&db, 10, false)).await.unwrap();
    let err = with_worker_on(Arc::new(db.store().await), |_| {
        handle.result_timeout(Duration::from_secs(10))
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("upstream unavailable (attempt 4)"),
        "{err}"
    );
    let effects = Ledger::at(&db.url).effects(handle.id().0).await.unwrap();
    assert_eq!(effects.len(), 4, "max_attempts = 4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_exhausted_pause_parks_the_run() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handle = client
        .start(flaky_pause, input(&db, 10, false))
        .await
        .unwrap();
    let err = with_worker_on(Arc::new(db.store().await), |_| {
        handle.result_timeout(Duration::from_secs(10))
    })
    .await
    .unwrap_err();
    match &err {
        durable::Error::RunParked { reason, .. } => {
            assert!(reason.contains("flaky_call_pause"), "{reason}");
            assert!(reason.contains("3 attempt(s)"), "{reason}");
        }
        other => panic!("expected a parked run, got {other:?}"),
    }
    let info = client.get(handle.id()).await.unwrap();
    assert_eq!(info.status, RunStatus::Parked);
    let effects = Ledger::at(&db.url).effects(handle.id().0).await.unwrap();
    assert_eq!(effects.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attempt_count_survives_a_worker_crash() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let ledger = Ledger::at(&db.url);
    // Fails twice; each 1.5 s backoff is a durable timer, longer than the inline wait.
    let handle = client
        .start(flaky_slow, input(&db, 2, false))
        .await
        .unwrap();
    let run = handle.id().0;

    let first = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    wait::until(
        "the first attempt to fail and the run to sleep",
        Duration::from_secs(20),
        || async {
            let info = client.get(handle.id()).await.unwrap();
            (info.status == RunStatus::Sleeping).then_some(())
        },
    )
    .await;
    first.kill().await;

    let second = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    let attempt = handle
        .result_timeout(Duration::from_secs(20))
        .await
        .unwrap();
    second.kill().await;
    let attempts: Vec<_> = ledger
        .effects(run)
        .await
        .unwrap()
        .iter()
        .map(|e| e.attempt)
        .collect();
    assert_eq!(
        attempts,
        [1, 2, 3],
        "attempts continue from the recorded count"
    );
    assert_eq!(attempt, 3);
}
