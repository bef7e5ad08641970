//! The crash-point matrix: a worker process aborts at an exact fault point — the first,
//! second, … time it gets there — and another worker finishes its runs. Every run completes;
//! an effect runs again only when the crash fell between the effect and its checkpoint, and
//! then once; a step whose checkpoint committed never runs again.
//!
//! CI crashes each point at its first three arrivals; `CRASH_POINT_ROUNDS=<n>` soaks with n.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, init_tracing, worker_bin};

const STEPS: u32 = 3;
const DEADLINE: Duration = Duration::from_secs(30);
const LEASE: Duration = Duration::from_secs(1);

/// How many arrivals at each point crash a worker, one after another; there are as many
/// runs, so that every point is reached that often.
fn rounds() -> u32 {
    std::env::var("CRASH_POINT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Crashes a worker at the `nth` arrival at `point`, lets another finish `runs` runs, and
/// returns how many steps ran more than once.
async fn crash_at(point: &str, nth: u32, runs: u32) -> i64 {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let mut handles = Vec::new();
    for _ in 0..runs {
        let input = StepsInput {
            ledger: db.url.clone(),
            count: STEPS,
            hang_at: None,
        };
        handles.push(client.start(steps, input).await.unwrap());
    }
    let crash = format!("{point}:{nth}");
    // One run at a time, so that exactly one step is in flight when the crash comes.
    let env = [("CRASH_AT", crash.as_str()), ("CONCURRENCY", "1")];
    let mut faulty = WorkerProcess::spawn_with(worker_bin!(), &db.url, LEASE, &env);
    let status = faulty.wait_exit(DEADLINE).await;
    assert!(!status.success(), "the worker crashed at {crash}: {status}");

    let healthy = WorkerProcess::spawn(worker_bin!(), &db.url, LEASE);
    for handle in &handles {
        let outputs = handle.result_timeout(DEADLINE).await.unwrap();
        assert_eq!(outputs.len(), STEPS as usize, "run completed after {crash}");
    }
    healthy.kill().await;
    let ledger = Ledger::at(&db.url);
    for handle in &handles {
        let counts = ledger.executions_per_step(handle.id().0).await.unwrap();
        assert!(
            counts.iter().all(|&c| c >= 1),
            "{crash}: a step never ran: {counts:?}"
        );
    }
    ledger.duplicated_steps().await.unwrap()
}

/// Runs the point's row of the matrix; every crash must repeat exactly `repeats` effects.
async fn row(point: &str, repeats: i64) {
    init_tracing();
    let runs = rounds();
    for nth in 1..=runs {
        let duplicated = crash_at(point, nth, runs).await;
        println!(
            "crash at {point}:{nth}: runs {runs}, lost 0, steps run more than once {duplicated}"
        );
        assert_eq!(
            duplicated, repeats,
            "effects repeated after a crash at {point}:{nth}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_a_claim_repeats_nothing() {
    row("run.claimed", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_an_activity_repeats_nothing() {
    row("activity.before", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_an_effect_and_its_checkpoint_repeats_that_effect_once() {
    row("activity.after", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_checkpoint_repeats_nothing() {
    row("checkpoint.after", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_a_run_finishes_repeats_nothing() {
    row("run.before-finish", 0).await;
}
