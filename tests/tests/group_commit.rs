//! Group commit on Postgres: checkpoints of concurrent runs share statements, and one that the
//! database refuses fails alone.
//!
//! To make the batching certain rather than likely, each test first takes every connection
//! of the store's pool: the checkpoints queue behind the flushers, which are stuck waiting
//! for a connection, and are written together once the connections come back.

use durable::store::{Checkpoint, ClaimRequest, ClaimedRun, NewRun, Store, Transition};
use durable::{
    Error, GroupCommitStats, PgStore, RunId, RunStatus, StepKind, StepRecord, StepStatus,
    WorkspaceId,
};
use durable_tests::TestDb;
use futures::future::join_all;
use serde_json::{Value, json};

use std::time::Duration;

const WORKFLOW: &str = "group-commit";
const LEASE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checkpoints_share_statements() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let runs = claimed_runs(&store, 40).await;
    let before = store.group_commit_stats();

    let checkpoints = runs.iter().map(|run| step_checkpoint(run, json!("ok")));
    let results =
        with_pool_held(&store, join_all(checkpoints.map(|cp| store.checkpoint(cp)))).await;

    for (run, result) in runs.iter().zip(results) {
        result.unwrap();
        assert_eq!(
            recorded_outputs(&store, run.info.id).await,
            vec![json!("ok")]
        );
    }
    let after = store.group_commit_stats();
    let statements = after.batches - before.batches;
    println!(
        "40 checkpoints in {statements} statements, largest {}",
        after.largest
    );
    assert_eq!(after.checkpoints - before.checkpoints, 40);
    // At most one batch per flusher before the pool was let go, and one each after it.
    assert!(
        statements <= 8,
        "{statements} statements for 40 checkpoints"
    );
    assert!(after.largest >= 5, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_the_database_refuses_fails_alone() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let runs = claimed_runs(&store, 10).await;
    // Postgres refuses a NUL character inside `jsonb`: that checkpoint's statement fails.
    let poisoned = runs[3].info.id;
    let checkpoints = runs.iter().map(|run| match run.info.id == poisoned {
        true => step_checkpoint(run, json!("nul \u{0} inside")),
        false => step_checkpoint(run, json!("ok")),
    });
    let results =
        with_pool_held(&store, join_all(checkpoints.map(|cp| store.checkpoint(cp)))).await;

    for (run, result) in runs.iter().zip(results) {
        let id = run.info.id;
        if id == poisoned {
            assert_refused_by_postgres(result.expect_err("the refused checkpoint fails"));
            assert!(recorded_outputs(&store, id).await.is_empty());
        } else {
            result.unwrap_or_else(|e| panic!("a neighbour of the refused checkpoint failed: {e}"));
            assert_eq!(recorded_outputs(&store, id).await, vec![json!("ok")]);
        }
        let status = store
            .get_run(WorkspaceId::DEFAULT, id)
            .await
            .unwrap()
            .unwrap()
            .status;
        assert_eq!(status, RunStatus::Running);
    }
    let GroupCommitStats { checkpoints, .. } = store.group_commit_stats();
    assert!(
        checkpoints >= 9,
        "the neighbours were written, {checkpoints} by batches"
    );
}

/// A refused value keeps the Postgres error as its source, with its class-22 SQLSTATE.
fn assert_refused_by_postgres(err: Error) {
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    let sqlstate = err
        .sqlstate()
        .unwrap_or_else(|| panic!("a SQLSTATE: {err:?}"));
    assert!(sqlstate.starts_with("22"), "{err:?}");
    assert!(err.to_string().contains(sqlstate), "{err}");
    let postgres = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<tokio_postgres::Error>())
        .unwrap_or_else(|| panic!("the tokio_postgres error is the source: {err:?}"));
    let code = postgres.as_db_error().map(|db| db.code().code());
    assert_eq!(code, Some(sqlstate));
}

/// Runs `work` while every connection of the pool is taken, letting them go once `work` has
/// queued what it writes (its first poll).
async fn with_pool_held<F: Future>(store: &PgStore, work: F) -> F::Output {
    let pool = store.pool();
    let mut held = Vec::new();
    for _ in 0..pool.status().max_size {
        held.push(pool.get().await.expect("a pooled connection"));
    }
    let mut work = std::pin::pin!(work);
    assert!(
        futures::poll!(work.as_mut()).is_pending(),
        "nothing can be written yet"
    );
    drop(held);
    work.await
}

async fn claimed_runs(store: &PgStore, n: usize) -> Vec<ClaimedRun> {
    for i in 0..n {
        let run = NewRun {
            id: RunId::new(),
            workspace_id: WorkspaceId::DEFAULT,
            workflow_id: format!("group-{i}"),
            workflow_name: WORKFLOW.to_owned(),
            workflow_version: 1,
            input: Value::Null,
            max_claims: 5,
            parent_run_id: None,
            timeout: None,
        };
        store.start_run(run).await.unwrap();
    }
    let request = ClaimRequest {
        worker_id: "w".to_owned(),
        workflows: vec![WORKFLOW.to_owned()],
        limit: n as u32,
        lease_ttl: LEASE,
        running: Vec::new(),
    };
    let claimed = store.claim(&request).await.unwrap();
    assert_eq!(claimed.len(), n);
    claimed
}

/// One completed step with `output`; the run keeps running.
fn step_checkpoint(run: &ClaimedRun, output: Value) -> Checkpoint {
    let step = StepRecord {
        seq: 0,
        name: "step".to_owned(),
        kind: StepKind::Activity,
        status: StepStatus::Completed,
        output: Some(output),
        error: None,
        attempts: 1,
        wake_at: None,
        first_attempt_at: None,
    };
    Checkpoint {
        steps: vec![step],
        ..Checkpoint::transition(run.lease, Transition::Continue, LEASE)
    }
}

async fn recorded_outputs(store: &PgStore, run: RunId) -> Vec<Value> {
    let steps = store.steps(WorkspaceId::DEFAULT, run).await.unwrap();
    steps.into_iter().filter_map(|s| s.output).collect()
}
