//! Conformance: messages sent to runs, waits for them, and events runs publish.

use std::sync::Arc;
use std::time::Duration;

use durable::store::{NewMessage, Store, Transition};
use durable::{Error, RunId, RunStatus, StepKind, StepRecord, StepStatus, WorkspaceId};
use serde_json::json;

use super::{LONG_LEASE, checkpoint, claim_one, claim_when_due, info, nothing_claimable, start};

fn message(run: RunId, topic: &str, payload: serde_json::Value, key: Option<&str>) -> NewMessage {
    NewMessage {
        workspace_id: WorkspaceId::DEFAULT,
        run_id: run,
        topic: topic.to_owned(),
        payload,
        idempotency_key: key.map(str::to_owned),
    }
}

fn recv_step(seq: u32, topic: &str, payload: serde_json::Value) -> StepRecord {
    StepRecord {
        seq,
        name: topic.to_owned(),
        kind: StepKind::Recv,
        status: StepStatus::Completed,
        output: Some(json!({ "message": payload })),
        error: None,
        attempts: 0,
        wake_at: None,
        first_attempt_at: None,
    }
}

fn topics(names: &[&str]) -> Vec<String> {
    names.iter().map(|t| (*t).to_owned()).collect()
}

async fn wait_for(store: &Arc<dyn Store>, topic: &str) -> RunId {
    wait_for_any(store, &[topic]).await
}

async fn wait_for_any(store: &Arc<dyn Store>, names: &[&str]) -> RunId {
    let claimed = claim_one(store, LONG_LEASE).await;
    let wake_at = store.now().await.unwrap() + Duration::from_secs(3600);
    let wait = Transition::Wait {
        topics: topics(names),
        wake_at,
    };
    store
        .checkpoint(checkpoint(claimed.lease, Vec::new(), wait))
        .await
        .unwrap();
    claimed.info.id
}

pub async fn messages_are_kept_in_order_and_taken_once(store: Arc<dyn Store>) {
    let run = start(&store, "inbox", 5).await;
    assert!(
        store
            .send_message(message(run, "t", json!(1), Some("k1")))
            .await
            .unwrap()
    );
    assert!(
        !store
            .send_message(message(run, "t", json!(1), Some("k1")))
            .await
            .unwrap(),
        "same key: not again"
    );
    assert!(
        store
            .send_message(message(run, "t", json!(2), None))
            .await
            .unwrap()
    );
    assert!(
        store
            .send_message(message(run, "other", json!(3), None))
            .await
            .unwrap()
    );

    let first = store
        .next_message(run, &topics(&["t"]))
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(first.payload, json!(1), "oldest first");
    let claimed = claim_one(&store, LONG_LEASE).await;
    let mut take = checkpoint(
        claimed.lease,
        vec![recv_step(0, "t", json!(1))],
        Transition::Continue,
    );
    take.consumed.push((first.id, 0));
    store.checkpoint(take).await.unwrap();

    let second = store
        .next_message(run, &topics(&["t"]))
        .await
        .unwrap()
        .expect("the second message");
    assert_eq!(second.payload, json!(2));
    assert_eq!(
        store
            .next_message(run, &topics(&["other"]))
            .await
            .unwrap()
            .unwrap()
            .payload,
        json!(3)
    );
}

pub async fn a_taken_message_stays_with_the_lease_holder(store: Arc<dyn Store>) {
    let run = start(&store, "fenced-inbox", 5).await;
    store
        .send_message(message(run, "t", json!("only"), None))
        .await
        .unwrap();
    let stale = claim_one(&store, Duration::from_millis(1)).await;
    let current = claim_when_due(&store, "the first lease to expire", LONG_LEASE).await;
    let only = store
        .next_message(run, &topics(&["t"]))
        .await
        .unwrap()
        .unwrap();
    let mut zombie = checkpoint(
        stale.lease,
        vec![recv_step(0, "t", json!("only"))],
        Transition::Continue,
    );
    zombie.consumed.push((only.id, 0));
    assert!(matches!(
        store.checkpoint(zombie).await,
        Err(Error::LeaseLost(_))
    ));
    assert_eq!(
        store.next_message(run, &topics(&["t"])).await.unwrap(),
        Some(only.clone()),
        "still there"
    );
    let mut take = checkpoint(
        current.lease,
        vec![recv_step(0, "t", json!("only"))],
        Transition::Continue,
    );
    take.consumed.push((only.id, 0));
    store.checkpoint(take).await.unwrap();
    assert_eq!(
        store.next_message(run, &topics(&["t"])).await.unwrap(),
        None
    );
}

pub async fn a_message_wakes_a_run_waiting_for_its_topic(store: Arc<dyn Store>) {
    start(&store, "approval", 5).await;
    let run = wait_for(&store, "approve").await;
    let waiting = info(&store, run).await;
    assert_eq!(waiting.status, RunStatus::Sleeping);
    assert_eq!(waiting.waiting_for.as_deref(), Some("approve"));
    assert!(nothing_claimable(&store).await);

    store
        .send_message(message(run, "unrelated", json!(0), None))
        .await
        .unwrap();
    assert!(
        nothing_claimable(&store).await,
        "another topic does not wake it"
    );
    store
        .send_message(message(run, "approve", json!(true), None))
        .await
        .unwrap();
    let woken = claim_one(&store, LONG_LEASE).await;
    assert_eq!(woken.info.id, run);
    assert_eq!(woken.info.waiting_for, None);
}

pub async fn a_wait_for_a_message_already_sent_is_due_at_once(store: Arc<dyn Store>) {
    let run = start(&store, "early", 5).await;
    store
        .send_message(message(run, "approve", json!(true), None))
        .await
        .unwrap();
    wait_for(&store, "approve").await;
    let woken = claim_one(&store, LONG_LEASE).await;
    assert_eq!(
        woken.info.id, run,
        "the message sent before the wait is not missed"
    );
}

/// A wait on several topics wakes on a message on any of them, and only on those; the oldest
/// message across them is taken first.
pub async fn a_wait_on_several_topics_wakes_on_any_of_them(store: Arc<dyn Store>) {
    start(&store, "review", 5).await;
    let run = wait_for_any(&store, &["approve", "reject"]).await;
    assert_eq!(
        info(&store, run).await.waiting_for.as_deref(),
        Some("approve\nreject")
    );
    for unrelated in ["approv", "reject ", "approve reject"] {
        store
            .send_message(message(run, unrelated, json!(0), None))
            .await
            .unwrap();
    }
    assert!(
        nothing_claimable(&store).await,
        "a topic that only looks like one of them does not wake it"
    );
    store
        .send_message(message(run, "reject", json!("typo"), None))
        .await
        .unwrap();
    store
        .send_message(message(run, "approve", json!(true), None))
        .await
        .unwrap();
    let woken = claim_one(&store, LONG_LEASE).await;
    assert_eq!(woken.info.id, run);
    let first = store
        .next_message(run, &topics(&["approve", "reject"]))
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(
        (first.topic.as_str(), first.payload),
        ("reject", json!("typo"))
    );
}

/// A wait on several topics is due at once when any of them already holds a message.
pub async fn a_wait_on_several_topics_sees_a_message_already_sent(store: Arc<dyn Store>) {
    let run = start(&store, "early-review", 5).await;
    store
        .send_message(message(run, "reject", json!("no"), None))
        .await
        .unwrap();
    wait_for_any(&store, &["approve", "reject"]).await;
    let woken = claim_one(&store, LONG_LEASE).await;
    assert_eq!(
        woken.info.id, run,
        "the message on the second topic is not missed"
    );
}

pub async fn messages_to_finished_or_missing_runs_are_refused(store: Arc<dyn Store>) {
    let run = start(&store, "done", 5).await;
    let claimed = claim_one(&store, LONG_LEASE).await;
    let complete = Transition::Complete {
        output: json!("ok"),
    };
    store
        .checkpoint(checkpoint(claimed.lease, Vec::new(), complete))
        .await
        .unwrap();
    let err = store
        .send_message(message(run, "t", json!(1), None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("completed")),
        "{err:?}"
    );

    let missing = RunId::new();
    let err = store
        .send_message(message(missing, "t", json!(1), None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RunNotFound(id) if id == missing),
        "{err:?}"
    );

    let other = start(&store, "elsewhere", 5).await;
    let mut foreign = message(other, "t", json!(1), None);
    foreign.workspace_id = WorkspaceId(uuid::Uuid::new_v4());
    assert!(matches!(
        store.send_message(foreign).await,
        Err(Error::RunNotFound(_))
    ));
    assert_eq!(
        store.next_message(other, &topics(&["t"])).await.unwrap(),
        None
    );
}

pub async fn events_are_published_with_their_checkpoint(store: Arc<dyn Store>) {
    let run = start(&store, "progress", 5).await;
    let stale = claim_one(&store, Duration::from_millis(1)).await;
    let current = claim_when_due(&store, "the first lease to expire", LONG_LEASE).await;
    let get = |key: &'static str| {
        let store = store.clone();
        async move {
            store
                .get_event(WorkspaceId::DEFAULT, run, key)
                .await
                .unwrap()
        }
    };
    assert_eq!(get("progress").await, None);

    let mut publish = checkpoint(current.lease, Vec::new(), Transition::Continue);
    publish.events.push(("progress".into(), json!(10)));
    store.checkpoint(publish.clone()).await.unwrap();
    assert_eq!(get("progress").await, Some(json!(10)));
    publish.events = vec![("progress".into(), json!(90))];
    store.checkpoint(publish).await.unwrap();
    assert_eq!(
        get("progress").await,
        Some(json!(90)),
        "a later value replaces it"
    );

    let mut zombie = checkpoint(stale.lease, Vec::new(), Transition::Continue);
    zombie.events.push(("progress".into(), json!(-1)));
    assert!(store.checkpoint(zombie).await.is_err());
    assert_eq!(
        get("progress").await,
        Some(json!(90)),
        "a fenced write publishes nothing"
    );
    let foreign = WorkspaceId(uuid::Uuid::new_v4());
    assert_eq!(
        store.get_event(foreign, run, "progress").await.unwrap(),
        None
    );
}

/// A message sent while its run is deciding to wait must wake it, whichever commits first.
pub async fn a_message_racing_a_wait_always_wakes_the_run(store: Arc<dyn Store>) {
    for round in 0..50 {
        let run = start(&store, &format!("race-{round}"), 5).await;
        let claimed = claim_one(&store, LONG_LEASE).await;
        let wake_at = store.now().await.unwrap() + Duration::from_secs(3600);
        let wait = Transition::Wait {
            topics: topics(&["go"]),
            wake_at,
        };
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .checkpoint(checkpoint(claimed.lease, Vec::new(), wait))
                    .await
            })
        };
        let sent = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .send_message(message(run, "go", json!(round), None))
                    .await
            })
        };
        waiting.await.unwrap().unwrap();
        assert!(sent.await.unwrap().unwrap());
        let woken = claim_one(&store, LONG_LEASE).await;
        assert_eq!(woken.info.id, run, "round {round}: the run was not woken");
        let done = Transition::Complete {
            output: json!(null),
        };
        store
            .checkpoint(checkpoint(woken.lease, Vec::new(), done))
            .await
            .unwrap();
    }
}
