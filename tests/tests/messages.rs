//! Messages and events through real workers, on both stores: a message wakes a waiting run,
//! one sent before the wait is not lost, a wait times out, a repeated send is delivered once,
//! and events publish progress. Plus a worker process killed while its run waits.

use std::sync::Arc;
use std::time::Duration;

use durable::prelude::*;
use durable::{RunStatus, Store};
use durable_tests::process::WorkerProcess;
use durable_tests::workflows::{approval, collect};
use durable_tests::{TestDb, wait, with_worker_on, worker_bin};

const DEADLINE: Duration = Duration::from_secs(20);

async fn waiting(client: &Client, run: RunId) {
    wait::until("the run to wait for its message", DEADLINE, || async {
        let info = client.get(run).await.unwrap();
        (info.status == RunStatus::Sleeping && info.waiting_for.as_deref() == Some("approve"))
            .then_some(())
    })
    .await;
}

async fn a_message_wakes_the_waiting_run(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let handle = client.start(approval, 600_000).await.unwrap();
        let stage: Option<String> = client
            .get_event(handle.id(), "stage", DEADLINE)
            .await
            .unwrap();
        assert_eq!(stage.as_deref(), Some("waiting"));
        waiting(&client, handle.id()).await;
        client.send(handle.id(), "approve", &"yes").await.unwrap();
        let answer = handle.result_timeout(DEADLINE).await.unwrap();
        assert_eq!(answer.as_deref(), Some("yes"));
        let stage: Option<String> = client
            .get_event(handle.id(), "stage", DEADLINE)
            .await
            .unwrap();
        assert_eq!(stage.as_deref(), Some("decided"));
    })
    .await;
}

async fn a_message_sent_before_the_wait_is_not_lost(store: Arc<dyn Store>) {
    let client = Client::from_arc(store.clone());
    let handle = client.start(approval, 600_000).await.unwrap();
    client.send(handle.id(), "approve", &"early").await.unwrap();
    with_worker_on(store, |_| async move {
        assert_eq!(
            handle.result_timeout(DEADLINE).await.unwrap().as_deref(),
            Some("early")
        );
    })
    .await;
}

async fn a_wait_times_out_with_none(store: Arc<dyn Store>) {
    with_worker_on(store, |client| async move {
        let handle = client.start(approval, 200).await.unwrap();
        assert_eq!(handle.result_timeout(DEADLINE).await.unwrap(), None);
    })
    .await;
}

async fn a_repeated_send_is_delivered_once(store: Arc<dyn Store>) {
    let client = Client::from_arc(store.clone());
    let handle = client.start(collect, ()).await.unwrap();
    assert!(
        client
            .send(handle.id(), "item", &"a")
            .idempotency_key("k1")
            .await
            .unwrap()
    );
    assert!(
        !client
            .send(handle.id(), "item", &"a")
            .idempotency_key("k1")
            .await
            .unwrap()
    );
    assert!(
        client
            .send(handle.id(), "item", &"b")
            .idempotency_key("k2")
            .await
            .unwrap()
    );
    with_worker_on(store, |client| async move {
        assert_eq!(handle.result_timeout(DEADLINE).await.unwrap(), ["a", "b"]);
        let err = client.send(handle.id(), "item", &"late").await.unwrap_err();
        assert!(err.to_string().contains("takes no more messages"), "{err}");
    })
    .await;
}

durable_tests::on_both_stores! {
    a_message_wakes_the_waiting_run,
    a_message_sent_before_the_wait_is_not_lost,
    a_wait_times_out_with_none,
    a_repeated_send_is_delivered_once,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_its_run_waits_is_replaced() {
    let db = TestDb::new().await;
    let client = Client::new(db.store().await);
    let handle = client.start(approval, 600_000).await.unwrap();
    let first = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    waiting(&client, handle.id()).await;
    first.kill().await;

    client
        .send(handle.id(), "approve", &"after the crash")
        .await
        .unwrap();
    let second = WorkerProcess::spawn(worker_bin!(), &db.url, Duration::from_secs(1));
    let answer = handle.result_timeout(DEADLINE).await.unwrap();
    second.kill().await;
    assert_eq!(answer.as_deref(), Some("after the crash"));
    let recv_steps: Vec<_> = client
        .steps(handle.id())
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == durable::StepKind::Recv)
        .collect();
    assert_eq!(recv_steps.len(), 1, "one recv step, completed once");
    assert_eq!(recv_steps[0].status, durable::StepStatus::Completed);
}
