//! A worker whose wall clock is a day ahead, next to a correct one: no run is claimed twice,
//! no lease is taken early, no timer fires early. Leases and timers follow the database
//! clock; the wall clock is skewed with libfaketime (installed by `scripts/test-deps`).

use std::collections::HashSet;
use std::time::Duration;

use durable::prelude::*;
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{StepsInput, sleeper, steps};
use durable_tests::{Ledger, TestDb, init_tracing, worker_bin};

const RUNS: usize = 24;
const STEPS: u32 = 3;
const SLEEPERS: usize = 6;
const SLEEP_MS: u64 = 1_500;
const DEADLINE: Duration = Duration::from_secs(60);
const DAY: i64 = 24 * 3600;

/// The libfaketime library of this machine.
fn faketime_library() -> String {
    let found = std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(|arch| Some(arch.ok()?.path().join("faketime/libfaketime.so.1")))
        .find(|lib| lib.exists());
    found
        .expect("libfaketime is installed (scripts/test-deps)")
        .to_string_lossy()
        .into_owned()
}

/// The wall clock (unix seconds) and pid a worker reported when it became ready.
async fn clock_and_pid(worker: &WorkerProcess) -> (i64, String) {
    let line = worker
        .wait_for_line("worker ready", Duration::from_secs(20))
        .await;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    (field("clock=").parse().unwrap(), field("pid="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_its_clock_a_day_ahead_claims_nothing_twice() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let lease = Duration::from_secs(1);
    let library = faketime_library();
    let skew = [
        ("LD_PRELOAD", library.as_str()),
        ("FAKETIME", "+1d"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("CONCURRENCY", "4"),
    ];
    let ahead = WorkerProcess::spawn_with(worker_bin!(), &db.url, lease, &skew);
    let right = WorkerProcess::spawn_with(worker_bin!(), &db.url, lease, &[("CONCURRENCY", "4")]);
    let (ahead_clock, ahead_pid) = clock_and_pid(&ahead).await;
    let (right_clock, _) = clock_and_pid(&right).await;
    assert!(
        ahead_clock - right_clock > DAY - 60,
        "the skewed worker's clock is a day ahead: {ahead_clock} vs {right_clock}"
    );

    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let input = StepsInput {
            ledger: db.url.clone(),
            count: STEPS,
            hang_at: None,
        };
        runs.push(client.start(steps, input).await.unwrap());
    }
    let mut timers = Vec::new();
    for _ in 0..SLEEPERS {
        timers.push(client.start(sleeper, SLEEP_MS).await.unwrap());
    }

    let mut pids = HashSet::new();
    for run in &runs {
        for output in run.result_timeout(DEADLINE).await.unwrap() {
            pids.insert(output.split('@').nth(1).unwrap().to_owned());
        }
    }
    for timer in &timers {
        let (due, woke) = timer.result_timeout(DEADLINE).await.unwrap();
        assert!(woke >= due, "a timer fired {} ms early", due - woke);
    }
    ahead.kill().await;
    right.kill().await;
    let duplicated = Ledger::at(&db.url).duplicated_steps().await.unwrap();
    println!(
        "runs: {RUNS} + {SLEEPERS} timers, workers: 2 (one a day ahead), \
         the skewed one took part: {}, steps run twice: {duplicated}",
        pids.contains(&ahead_pid)
    );
    assert!(pids.contains(&ahead_pid), "the skewed worker took part");
    assert_eq!(duplicated, 0, "no step ran twice: no lease was taken early");
}
