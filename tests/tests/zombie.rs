//! Zombie: a worker frozen (SIGSTOP) past its lease, then thawed (SIGCONT), cannot record
//! anything; the newer attempt's results stand.

use std::time::Duration;

use durable::prelude::*;
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{StepsInput, steps};
use durable_tests::{Ledger, TestDb, wait, worker_bin};

const LEASE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_thawed_after_its_lease_expired_is_fenced() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let ledger = Ledger::at(&db.url);
    let input = StepsInput {
        ledger: db.url.clone(),
        count: 3,
        hang_at: Some(1),
    };
    let handle = client.start(steps, input).await.unwrap();
    let run = handle.id().0;

    let zombie = WorkerProcess::spawn(worker_bin!(), &db.url, LEASE);
    wait::until(
        "the first worker to be inside step 1",
        Duration::from_secs(20),
        || async { (ledger.executions_per_step(run).await.unwrap().len() == 2).then_some(()) },
    )
    .await;
    zombie.stop();
    let sql = db.client().await;
    wait::until(
        "the frozen worker's lease to expire",
        Duration::from_secs(10),
        || async {
            let row = sql
                .query_one(
                    "SELECT lease_expires_at < now() FROM durable.runs WHERE id = $1",
                    &[&run],
                )
                .await
                .unwrap();
            row.get::<_, bool>(0).then_some(())
        },
    )
    .await;

    let successor = WorkerProcess::spawn(worker_bin!(), &db.url, LEASE);
    let outputs = handle
        .result_timeout(Duration::from_secs(20))
        .await
        .unwrap();
    let recorded_before = client.steps(handle.id()).await.unwrap();
    let run_before = client.get(handle.id()).await.unwrap();

    // Thaw the zombie and let its blocked activity finish: it must not be able to record.
    let step1_key = format!("{run}-1");
    ledger.release(&step1_key).await.unwrap();
    zombie.resume();
    zombie
        .wait_for_line("lease_lost", Duration::from_secs(10))
        .await;

    let recorded_after = client.steps(handle.id()).await.unwrap();
    let run_after = client.get(handle.id()).await.unwrap();
    assert_eq!(
        recorded_after, recorded_before,
        "the zombie changed recorded steps"
    );
    assert_eq!(run_after.output, run_before.output);
    assert_eq!(run_after.status, RunStatus::Completed);
    let successor_pid = successor.pid();
    assert_eq!(
        outputs[1],
        format!("1@{successor_pid}"),
        "the newer attempt's result stands"
    );
    assert_eq!(outputs[2], format!("2@{successor_pid}"));
    zombie.kill().await;
    successor.kill().await;
}
