//! Durable selects, on both stores: the first message of several topics wins, a wait on
//! several topics times out, the first of several children wins while the others run on;
//! and a worker process killed while a parent waits for the first of its children.

use std::sync::Arc;
use std::time::Duration;

use durable::prelude::*;
use durable::{RunStatus, StepKind, Store};
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{first_approval, review};
use durable_tests::{TestDb, init_tracing, wait, with_worker_on, worker_bin};

const DEADLINE: Duration = Duration::from_secs(30);

/// Waits until `run` sleeps waiting for messages on `topics` (newline-separated).
async fn waiting_for(client: &Client, run: RunId, topics: &str) {
    wait::until("the run to wait for its messages", DEADLINE, || async {
        let info = client.get(run).await.unwrap();
        (info.status == RunStatus::Sleeping && info.waiting_for.as_deref() == Some(topics))
            .then_some(())
    })
    .await;
}

/// The children [`first_approval`] started, once it has published them.
async fn children_of(client: &Client, parent: RunId) -> Vec<RunId> {
    client
        .get_event(parent, "children", DEADLINE)
        .await
        .unwrap()
        .expect("the parent publishes its children")
}

fn child_topics(children: &[RunId]) -> String {
    let topics: Vec<String> = children.iter().map(|c| format!("child:{c}")).collect();
    topics.join("\n")
}

async fn the_first_message_of_several_topics_wins(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let handle = client.start(review, 600_000).await.unwrap();
        waiting_for(&client, handle.id(), "approve\nreject").await;
        client.send(handle.id(), "reject", &"typo").await.unwrap();
        client.send(handle.id(), "approve", &"fine").await.unwrap();
        let answer = handle.result_timeout(DEADLINE).await.unwrap();
        assert_eq!(answer, Some(("reject".to_owned(), "typo".to_owned())));
        let recv = client.steps(handle.id()).await.unwrap();
        assert_eq!(recv.len(), 1, "one recv step: {recv:?}");
        assert_eq!(recv[0].name, "approve | reject");
    })
    .await;
}

async fn a_wait_on_several_topics_times_out_with_none(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let handle = client.start(review, 200).await.unwrap();
        assert_eq!(handle.result_timeout(DEADLINE).await.unwrap(), None);
    })
    .await;
}

async fn the_first_child_to_finish_wins_and_the_others_run_on(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let parent = client.start(first_approval, 600_000).await.unwrap();
        let children = children_of(&client, parent.id()).await;
        assert_eq!(children.len(), 3);
        waiting_for(&client, parent.id(), &child_topics(&children)).await;
        client
            .send(children[1], "approve", &"second")
            .await
            .unwrap();
        let first = parent.result_timeout(DEADLINE).await.unwrap();
        assert_eq!(first, Some((1, Some("second".to_owned()))));
        for loser in [children[0], children[2]] {
            // still waiting for its own approval: the parent's select did not end it
            waiting_for(&client, loser, "approve").await;
            client.cancel(loser).await.unwrap();
        }
    })
    .await;
}

durable_tests::on_both_stores! {
    the_first_message_of_several_topics_wins,
    a_wait_on_several_topics_times_out_with_none,
    the_first_child_to_finish_wins_and_the_others_run_on,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_a_parent_waits_for_the_first_child_is_replaced() {
    init_tracing();
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let parent = client.start(first_approval, 600_000).await.unwrap();
    let first = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    let children = children_of(&client, parent.id()).await;
    waiting_for(&client, parent.id(), &child_topics(&children)).await;
    first.kill().await;

    client
        .send(children[2], "approve", &"after the crash")
        .await
        .unwrap();
    let second = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    let answer = parent.result_timeout(DEADLINE).await.unwrap();
    for loser in [children[0], children[1]] {
        client.cancel(loser).await.unwrap();
    }
    second.kill().await;
    assert_eq!(answer, Some((2, Some("after the crash".to_owned()))));
    let steps = client.steps(parent.id()).await.unwrap();
    let starts = steps.iter().filter(|s| s.kind == StepKind::StartChild);
    assert_eq!(starts.count(), 3, "no child started twice");
    let waits: Vec<_> = steps.iter().filter(|s| s.kind == StepKind::Recv).collect();
    assert_eq!(
        waits.len(),
        1,
        "one wait for the first child, completed once"
    );
    assert_eq!(waits[0].status, durable::StepStatus::Completed);
}
