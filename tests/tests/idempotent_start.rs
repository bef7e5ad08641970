//! Starting with the same workflow id returns the same run; a different input is an error.

use durable::prelude::*;
use durable_tests::TestDb;
use durable_tests::workflows::{StepsInput, sleeper, steps};

fn input(count: u32) -> StepsInput {
    StepsInput {
        ledger: String::new(),
        count,
        hang_at: None,
    }
}

#[tokio::test]
async fn same_id_returns_the_same_run() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let first = client.start(steps, input(3)).id("order-42").await.unwrap();
    let second = client.start(steps, input(3)).id("order-42").await.unwrap();
    assert_eq!(first.id(), second.id());
    let runs = client.list(durable::RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].workflow_id, "order-42");
}

#[tokio::test]
async fn same_id_with_different_input_is_a_clear_error() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let first = client.start(steps, input(3)).id("order-42").await.unwrap();
    let err = client
        .start(steps, input(4))
        .id("order-42")
        .await
        .unwrap_err();
    match &err {
        durable::Error::IdConflict {
            workflow_id,
            run_id,
            reason,
        } => {
            assert_eq!(workflow_id, "order-42");
            assert_eq!(*run_id, first.id());
            assert!(reason.contains("different input"), "{reason}");
        }
        other => panic!("expected IdConflict, got {other:?}"),
    }
    assert!(err.to_string().contains("order-42"), "{err}");
}

#[tokio::test]
async fn same_id_with_another_workflow_is_a_clear_error() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    client.start(steps, input(3)).id("shared").await.unwrap();
    let err = client.start(sleeper, 10).id("shared").await.unwrap_err();
    assert!(err.to_string().contains("workflow `steps`"), "{err}");
}

#[tokio::test]
async fn concurrent_starts_with_one_id_make_one_run() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let starts = (0..16).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.start(steps, input(1)).id("race").await.unwrap().id() })
    });
    let ids = futures_ids(starts).await;
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

async fn futures_ids(handles: impl Iterator<Item = tokio::task::JoinHandle<RunId>>) -> Vec<RunId> {
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids
}
