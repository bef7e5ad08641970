//! The worker-level behaviours, on the SQLite store: replay after an interruption, durable
//! sleep across a worker restart, retries and terminal errors, the non-determinism park and
//! idempotent start. The effects ledger stays in Postgres (a `TestDb` of its own); the engine
//! runs on a SQLite file.

use std::sync::Arc;
use std::time::Duration;

use durable::Store;
use durable::prelude::*;
use durable_tests::conformance::SqliteFile;
use durable_tests::workflows::{FlakyInput, StepsInput, flaky, sleeper, steps};
use durable_tests::{
    Ledger, TestDb, init_tracing, wait, with_worker_on, with_worker_using, worker_on,
};

/// A SQLite engine and a Postgres ledger.
struct Setup {
    file: SqliteFile,
    ledger_db: TestDb,
    store: Arc<dyn Store>,
    client: Client,
}

impl Setup {
    async fn new() -> Self {
        init_tracing();
        let file = SqliteFile::new();
        let store: Arc<dyn Store> = Arc::new(file.store().await);
        Self {
            client: Client::from_arc(store.clone()),
            ledger_db: TestDb::new().await,
            file,
            store,
        }
    }

    fn ledger(&self) -> Ledger {
        Ledger::at(&self.ledger_db.url)
    }

    fn flaky(&self, failures: u32, terminal: bool) -> FlakyInput {
        FlakyInput {
            ledger: self.ledger_db.url.clone(),
            failures,
            terminal,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_run_resumes_and_runs_only_the_remaining_steps() {
    let s = Setup::new().await;
    let ledger = s.ledger();
    let input = StepsInput {
        ledger: s.ledger_db.url.clone(),
        count: 4,
        hang_at: Some(2),
    };
    let handle = s.client.start(steps, input).await.unwrap();
    let run = handle.id().0;

    // First worker: runs steps 0 and 1, then blocks inside step 2.
    let first = worker_on(s.store.clone())
        .shutdown_timeout(Duration::ZERO)
        .build();
    let stop_first = first.shutdown_token();
    let first = tokio::spawn(first.run());
    wait::until("step 2 to start", Duration::from_secs(10), || async {
        (ledger.executions_per_step(run).await.unwrap().len() == 3).then_some(())
    })
    .await;
    // Interrupt it: shutdown hands the unfinished run back.
    stop_first.cancel();
    first.await.unwrap().unwrap();
    assert_eq!(
        s.client.get(handle.id()).await.unwrap().status,
        RunStatus::Pending
    );
    let recorded = s.client.steps(handle.id()).await.unwrap();
    assert_eq!(
        recorded.len(),
        2,
        "exactly the 2 finished activities are recorded"
    );

    // Second worker resumes: steps 0 and 1 replay, steps 2 and 3 run.
    let outputs = with_worker_on(s.store.clone(), |_| {
        handle.result_timeout(Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert_eq!(outputs.len(), 4);
    let counts = ledger.executions_per_step(run).await.unwrap();
    assert_eq!(counts, vec![1, 1, 2, 1], "executions per step");
    assert_eq!(
        outputs[0],
        recorded[0].output.as_ref().unwrap().as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_sleep_survives_a_worker_restart_and_wakes_on_time() {
    let s = Setup::new().await;
    // Longer than the worker's inline wait (1 s), so the sleep is a durable timer.
    let handle = s.client.start(sleeper, 2_000).await.unwrap();
    with_worker_on(s.store.clone(), |_| {
        wait::until("the run to sleep", Duration::from_secs(10), || async {
            let info = s.client.get(handle.id()).await.unwrap();
            (info.status == RunStatus::Sleeping).then_some(())
        })
    })
    .await;

    let (due, woke) = with_worker_on(s.store.clone(), |_| {
        handle.result_timeout(Duration::from_secs(10))
    })
    .await
    .unwrap();
    let lateness = woke - due;
    println!("timer due at {due}, woke at {woke}: {lateness} ms late");
    assert!(lateness >= 0, "woke {} ms early", -lateness);
    assert!(lateness < 1_000, "woke {lateness} ms late");
    let kinds: Vec<_> = s
        .client
        .steps(handle.id())
        .await
        .unwrap()
        .iter()
        .map(|st| st.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            durable::StepKind::Now,
            durable::StepKind::Sleep,
            durable::StepKind::Now
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_errors_are_retried_until_one_succeeds() {
    let s = Setup::new().await;
    let handle = s.client.start(flaky, s.flaky(2, false)).await.unwrap();
    let attempt = with_worker_on(s.store.clone(), |_| {
        handle.result_timeout(Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert_eq!(attempt, 3, "succeeded on the third attempt");
    let effects = s.ledger().effects(handle.id().0).await.unwrap();
    assert_eq!(
        effects.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let recorded = s.client.steps(handle.id()).await.unwrap();
    assert_eq!(
        (recorded[0].attempts, recorded[0].status),
        (3, durable::StepStatus::Completed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_error_stops_retries_and_fails_the_run() {
    let s = Setup::new().await;
    let handle = s.client.start(flaky, s.flaky(0, true)).await.unwrap();
    let err = with_worker_on(s.store.clone(), |_| {
        handle.result_timeout(Duration::from_secs(10))
    })
    .await
    .unwrap_err();
    assert!(matches!(err, durable::Error::RunFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("card declined"), "{err}");
    let effects = s.ledger().effects(handle.id().0).await.unwrap();
    assert_eq!(effects.len(), 1, "a terminal error is not retried");
    let recorded = s.client.steps(handle.id()).await.unwrap();
    assert_eq!(recorded[0].status, durable::StepStatus::Failed);
    assert_eq!(
        s.client.get(handle.id()).await.unwrap().status,
        RunStatus::Failed
    );
}

#[durable::activity]
async fn reserve(_ctx: &ActivityCtx) -> Result<u32, ActivityError> {
    Ok(1)
}

#[durable::activity]
async fn charge(_ctx: &ActivityCtx) -> Result<u32, ActivityError> {
    Ok(2)
}

/// Version 1: reserve, wait, charge.
#[durable::workflow(name = "order")]
async fn order_v1(ctx: &WorkflowCtx) -> Result<u32, WorkflowError> {
    let a = reserve(ctx).await?;
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(a + charge(ctx).await?)
}

/// The same workflow after a careless edit: charge first.
#[durable::workflow(name = "order")]
async fn order_v2(ctx: &WorkflowCtx) -> Result<u32, WorkflowError> {
    let b = charge(ctx).await?;
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(b + reserve(ctx).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_activities_park_the_run_with_a_clear_message() {
    let s = Setup::new().await;
    let handle = s.client.start(order_v1, ()).await.unwrap();
    with_worker_using(
        s.store.clone(),
        |w| w.register(order_v1),
        |_| {
            wait::until(
                "v1 to record reserve and sleep",
                Duration::from_secs(10),
                || async {
                    let info = s.client.get(handle.id()).await.unwrap();
                    (info.status == RunStatus::Sleeping).then_some(())
                },
            )
        },
    )
    .await;

    // Make the timer due now (through another connection to the file), then let the new
    // code pick the run up.
    let sql = rusqlite::Connection::open(s.file.path()).unwrap();
    sql.busy_timeout(Duration::from_secs(5)).unwrap();
    let now_us = s.store.now().await.unwrap().timestamp_micros();
    let changed = sql
        .execute(
            "UPDATE runs SET wake_at = ?1 WHERE id = ?2",
            rusqlite::params![now_us, handle.id().to_string()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let err = with_worker_using(
        s.store.clone(),
        |w| w.register(order_v2),
        |_| handle.result_timeout(Duration::from_secs(10)),
    )
    .await
    .unwrap_err();

    let durable::Error::RunParked { reason, .. } = err else {
        panic!("expected parked, got {err:?}")
    };
    println!("{reason}");
    assert!(reason.contains("non-determinism at step 0"), "{reason}");
    assert!(reason.contains("activity `reserve`"), "{reason}");
    assert!(reason.contains("activity `charge`"), "{reason}");
    let recorded = s.client.steps(handle.id()).await.unwrap();
    assert_eq!(recorded.len(), 2, "nothing of the new code was recorded");
    assert_eq!(recorded[0].name, "reserve");
}

fn no_ledger(count: u32) -> StepsInput {
    StepsInput {
        ledger: String::new(),
        count,
        hang_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_the_same_id_returns_the_same_run() {
    let file = SqliteFile::new();
    let client = Client::new(file.store().await);
    let first = client
        .start(steps, no_ledger(3))
        .id("order-42")
        .await
        .unwrap();
    let second = client
        .start(steps, no_ledger(3))
        .id("order-42")
        .await
        .unwrap();
    assert_eq!(first.id(), second.id());
    let runs = client.list(durable::RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1);

    let err = client
        .start(steps, no_ledger(4))
        .id("order-42")
        .await
        .unwrap_err();
    match &err {
        durable::Error::IdConflict {
            workflow_id,
            run_id,
            reason,
        } => {
            assert_eq!((workflow_id.as_str(), *run_id), ("order-42", first.id()));
            assert!(reason.contains("different input"), "{reason}");
        }
        other => panic!("expected IdConflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_with_one_id_make_one_run() {
    let file = SqliteFile::new();
    let client = Client::new(file.store().await);
    let starts: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .start(steps, no_ledger(1))
                    .id("race")
                    .await
                    .unwrap()
                    .id()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for start in starts {
        ids.push(start.await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(
        client
            .list(durable::RunFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}
