//! Fork: a new run from step N of an existing one copies the steps before N (their activities
//! do not run again), runs the rest, and links to its origin; on both stores.

use std::sync::Arc;
use std::time::Duration;

use durable::prelude::*;
use durable::{RunStatus, Store};
use durable_tests::workflows::{StepsInput, fan_out, steps};
use durable_tests::{Ledger, TestDb, with_worker_on};

const DEADLINE: Duration = Duration::from_secs(30);

async fn a_fork_reruns_only_the_steps_from_its_start(store: Arc<dyn Store>, ledger_db: &TestDb) {
    let ledger = Ledger::at(&ledger_db.url);
    let input = StepsInput {
        ledger: ledger_db.url.clone(),
        count: 4,
        hang_at: None,
    };
    with_worker_on(store, |client| async move {
        let origin = client.start(steps, input).await.unwrap();
        let original = origin.result_timeout(DEADLINE).await.unwrap();

        let fork_id = client.fork(origin.id(), 2).await.unwrap();
        let fork = client.handle::<steps>(fork_id);
        let forked = fork.result_timeout(DEADLINE).await.unwrap();

        assert_eq!(
            forked[..2],
            original[..2],
            "steps 0 and 1 are the origin's results"
        );
        assert_eq!(
            ledger.executions_per_step(fork_id.0).await.unwrap(),
            [0, 0, 1, 1]
        );
        assert_eq!(
            ledger.executions_per_step(origin.id().0).await.unwrap(),
            [1, 1, 1, 1]
        );
        let info = client.get(fork_id).await.unwrap();
        assert_eq!(info.forked_from, Some(origin.id()));
        assert_eq!(info.status, RunStatus::Completed);
    })
    .await;
}

async fn a_fork_can_take_a_new_input_and_refuses_to_copy_a_child_start(
    store: Arc<dyn Store>,
    ledger_db: &TestDb,
) {
    let input = StepsInput {
        ledger: ledger_db.url.clone(),
        count: 2,
        hang_at: None,
    };
    with_worker_on(store, |client| async move {
        let origin = client.start(steps, input.clone()).await.unwrap();
        origin.result_timeout(DEADLINE).await.unwrap();
        let longer = StepsInput { count: 3, ..input };
        let fork_id = client.fork(origin.id(), 2).input(&longer).id("longer").await.unwrap();
        let outputs = client.handle::<steps>(fork_id).result_timeout(DEADLINE).await.unwrap();
        assert_eq!(outputs.len(), 3);
        assert_eq!(client.get(fork_id).await.unwrap().workflow_id, "longer");

        let parent = client.start(fan_out, 2).await.unwrap();
        parent.result_timeout(DEADLINE).await.unwrap();
        let err = client.fork(parent.id(), 1).await.unwrap_err();
        assert!(err.to_string().contains("child workflow"), "{err}");
        let missing = RunId::new();
        assert!(matches!(client.fork(missing, 0).await, Err(durable::Error::RunNotFound(id)) if id == missing));
    })
    .await;
}

durable_tests::on_both_stores! {
    ledger:
    a_fork_reruns_only_the_steps_from_its_start,
    a_fork_can_take_a_new_input_and_refuses_to_copy_a_child_start,
}
