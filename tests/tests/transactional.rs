//! Transactional steps: the step's SQL and its record commit together, so a worker killed
//! before the commit leaves nothing (the step runs again), and one killed after it leaves the
//! rows written once (the step is not run again). Plus the SQLite variant and a rollback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use durable::prelude::*;
use durable_tests::conformance::SqliteFile;
use durable_tests::process::WorkerProcess;
use durable_tests::transactional::{DepositInput, HangAt, deposit};
use durable_tests::{Ledger, TestDb, init_tracing, wait, worker_bin};

const DEADLINE: Duration = Duration::from_secs(30);

async fn deposits(db: &TestDb, run: RunId) -> i64 {
    let sql = db.client().await;
    sql.query_one(
        "SELECT count(*) FROM test_deposits WHERE run_id = $1",
        &[&run.0],
    )
    .await
    .unwrap()
    .get(0)
}

/// Starts a deposit whose first execution blocks at `hang`, kills its worker there, lets a
/// second worker finish it; returns the run, and how often the transaction body ran.
async fn kill_at(db: &TestDb, hang: HangAt, started: impl Fn(&[usize]) -> bool) -> (RunId, usize) {
    let client = Client::new(db.store().await);
    let ledger = Ledger::at(&db.url);
    let handle = client
        .start(
            deposit,
            DepositInput {
                ledger: db.url.clone(),
                hang,
            },
        )
        .await
        .unwrap();
    let run = handle.id();
    let first = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    wait::until("the worker to reach the kill point", DEADLINE, || async {
        started(&ledger.executions_per_step(run.0).await.unwrap()).then_some(())
    })
    .await;
    first.kill().await;
    let second = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    handle.result_timeout(DEADLINE).await.unwrap();
    second.kill().await;
    let bodies = ledger.executions_per_step(run.0).await.unwrap()[0];
    (run, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_its_commit_the_step_leaves_nothing_and_runs_again() {
    let db = TestDb::new().await;
    // Step 0 is the transaction body (blocked inside the open transaction).
    let (run, bodies) = kill_at(&db, HangAt::BeforeCommit, |counts| {
        counts.first() == Some(&1)
    })
    .await;
    println!(
        "transaction bodies run: {bodies}, deposits: {}",
        deposits(&db, run).await
    );
    assert_eq!(bodies, 2, "the uncommitted step ran again");
    assert_eq!(
        deposits(&db, run).await,
        1,
        "its rows were written exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_its_commit_the_step_is_not_run_again() {
    let db = TestDb::new().await;
    // Step 1 is the activity after the commit.
    let (run, bodies) = kill_at(&db, HangAt::AfterCommit, |counts| counts.len() == 2).await;
    println!(
        "transaction bodies run: {bodies}, deposits: {}",
        deposits(&db, run).await
    );
    assert_eq!(bodies, 1, "the committed step was replayed, not run");
    assert_eq!(deposits(&db, run).await, 1);
}

static SQLITE_BODIES: AtomicU32 = AtomicU32::new(0);

/// Inserts a row in a transactional step on the SQLite file, then sleeps past the inline wait
/// so the run is replayed from its history before it finishes; `fail` makes the body fail
/// after its insert.
#[durable::workflow]
async fn note(ctx: &WorkflowCtx, fail: bool) -> Result<i64, WorkflowError> {
    let rows = ctx
        .sqlite_transaction("insert_note", move |tx| {
            SQLITE_BODIES.fetch_add(1, Ordering::SeqCst);
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)",
            )?;
            tx.execute("INSERT INTO notes (body) VALUES ('hello')", [])?;
            if fail {
                return Err(ActivityError::terminal("refused after the insert"));
            }
            Ok(tx.query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0))?)
        })
        .await?;
    ctx.sleep(Duration::from_millis(1_200)).await?;
    Ok(rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_step_commits_once_and_a_failure_rolls_back() {
    init_tracing();
    let file = SqliteFile::new();
    let store: Arc<dyn durable::Store> = Arc::new(file.store().await);
    let worker = durable_worker::Worker::builder_arc(store.clone())
        .register(note)
        .inline_wait(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(100))
        .build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    let client = Client::from_arc(store.clone());

    let ok = client.start(note, false).await.unwrap();
    assert_eq!(ok.result_timeout(DEADLINE).await.unwrap(), 1);
    assert_eq!(
        SQLITE_BODIES.load(Ordering::SeqCst),
        1,
        "replayed after the sleep, not run again"
    );

    let failing = client.start(note, true).await.unwrap();
    let err = failing.result_timeout(DEADLINE).await.unwrap_err();
    assert!(
        err.to_string().contains("refused after the insert"),
        "{err}"
    );
    assert!(
        client.steps(failing.id()).await.unwrap().is_empty(),
        "nothing recorded"
    );
    stop.cancel();
    task.await.unwrap().unwrap();

    let rows: i64 = rusqlite::Connection::open(file.path())
        .unwrap()
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the failed step's insert was rolled back");
}

#[tokio::test]
async fn a_transaction_on_the_wrong_store_is_a_clear_error() {
    let file = SqliteFile::new();
    let store: Arc<dyn durable::Store> = Arc::new(file.store().await);
    let worker = durable_worker::Worker::builder_arc(store.clone())
        .register(deposit)
        .build();
    let stop = worker.shutdown_token();
    let task = tokio::spawn(worker.run());
    let client = Client::from_arc(store);
    let input = DepositInput {
        ledger: String::new(),
        hang: HangAt::Nowhere,
    };
    let err = client
        .start(deposit, input)
        .await
        .unwrap()
        .result_timeout(DEADLINE)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("needs the Postgres store"),
        "{err}"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
}
