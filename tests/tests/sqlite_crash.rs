//! Worker processes on one SQLite file: a worker killed with SIGKILL mid-activity is replaced
//! by another process that finishes the run without re-running completed steps, and two
//! worker processes share a batch of runs without executing any step twice.
//!
//! The engine runs on a SQLite file; the effects ledger stays in Postgres (a `TestDb` of its
//! own), so that what really ran is counted outside the store under test.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::conformance::SqliteFile;
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, wait, worker_bin};

const LEASE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_is_replaced_and_completed_steps_are_not_rerun() {
    let file = SqliteFile::new();
    let ledger_db = TestDb::new().await;
    let client = Client::new(file.store().await);
    let ledger = Ledger::at(&ledger_db.url);
    let input = StepsInput {
        ledger: ledger_db.url.clone(),
        count: 4,
        hang_at: Some(2),
    };
    let handle = client.start(steps, input).await.unwrap();
    let run = handle.id().0;

    let first = WorkerProcess::spawn(worker_bin!(), &file.url(), LEASE);
    let first_pid = first.pid();
    wait::until(
        "the first worker to be inside step 2",
        Duration::from_secs(20),
        || async { (ledger.executions_per_step(run).await.unwrap().len() == 3).then_some(()) },
    )
    .await;
    first.kill().await;

    let second = WorkerProcess::spawn(worker_bin!(), &file.url(), LEASE);
    let outputs = handle
        .result_timeout(Duration::from_secs(20))
        .await
        .unwrap();
    let second_pid = second.pid();
    second.kill().await;

    let counts = ledger.executions_per_step(run).await.unwrap();
    println!("executions per step: {counts:?} (first worker {first_pid}, second {second_pid})");
    assert_eq!(
        counts,
        vec![1, 1, 2, 1],
        "only the interrupted step ran again"
    );
    assert_eq!(
        outputs,
        vec![
            format!("0@{first_pid}"),
            format!("1@{first_pid}"),
            format!("2@{second_pid}"),
            format!("3@{second_pid}"),
        ]
    );
    assert_eq!(
        client.get(handle.id()).await.unwrap().status,
        RunStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_share_50_runs_without_running_a_step_twice() {
    let file = SqliteFile::new();
    let ledger_db = TestDb::new().await;
    let client = Client::new(file.store().await);
    let ledger = Ledger::at(&ledger_db.url);

    let workers = [
        WorkerProcess::spawn(worker_bin!(), &file.url(), LEASE),
        WorkerProcess::spawn(worker_bin!(), &file.url(), LEASE),
    ];
    for worker in &workers {
        worker
            .wait_for_line("worker ready", Duration::from_secs(20))
            .await;
    }
    let started = tokio::time::Instant::now();
    let mut handles = Vec::new();
    for _ in 0..50 {
        // Step 1 of every run blocks until released, so runs pile up in the workers.
        let input = StepsInput {
            ledger: ledger_db.url.clone(),
            count: 3,
            hang_at: Some(1),
        };
        handles.push(client.start(steps, input).await.unwrap());
    }
    // A worker runs at most 32 runs at once (its default concurrency), so all 50 runs can
    // only reach step 1 if both processes claimed some: the work is shared, and from here
    // on both are writing to the file at once.
    wait::until(
        "every run to reach step 1",
        Duration::from_secs(30),
        || async { (ledger.total().await.unwrap() == 100).then_some(()) },
    )
    .await;
    let mut holders = std::collections::BTreeSet::new();
    for handle in &handles {
        let effects = ledger.effects(handle.id().0).await.unwrap();
        holders.extend(effects.iter().map(|e| e.pid));
        ledger.release(&format!("{}-1", handle.id())).await.unwrap();
    }
    let mut pids: Vec<i32> = workers.iter().map(WorkerProcess::pid).collect();
    pids.sort();
    assert_eq!(
        holders.into_iter().collect::<Vec<_>>(),
        pids,
        "both processes hold runs"
    );

    for handle in &handles {
        let outputs = handle
            .result_timeout(Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(outputs.len(), 3);
    }
    let elapsed = started.elapsed();
    for worker in workers {
        worker.kill().await;
    }

    let total = ledger.total().await.unwrap();
    let duplicated = ledger.duplicated_steps().await.unwrap();
    println!(
        "runs: 50, activity executions: {total}, duplicated steps: {duplicated}, in {elapsed:?}"
    );
    assert_eq!(total, 150, "each of the 150 steps ran once");
    assert_eq!(duplicated, 0);
    let completed = client
        .list(
            durable::RunFilter::default()
                .status(RunStatus::Completed)
                .limit(100),
        )
        .await
        .unwrap();
    assert_eq!(completed.len(), 50);
}
