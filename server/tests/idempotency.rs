//! `Idempotency-Key` with Stripe's semantics on the real server.

mod common;

use common::{TestServer, json, problem};
use durable_control::IdempotencyBegin;
use durable_server::idempotency::KEY_TTL;
use reqwest::{Method, Response};
use serde_json::{Value, json};

on_both_stores!(
    the_same_key_and_body_get_the_stored_response_and_act_once,
    the_same_key_with_another_body_is_refused,
    a_stored_error_is_replayed_too,
    a_key_still_in_flight_gets_409,
    concurrent_duplicates_act_once,
    keys_are_per_workspace,
);

async fn post_with_key(server: &TestServer, api_key: &str, key: &str, body: &Value) -> Response {
    server
        .request(Method::POST, "/v1/flows", Some(api_key))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn flow_count(server: &TestServer, api_key: &str) -> usize {
    let flows = json(server.get(api_key, "/v1/flows").await, 200).await;
    flows.as_array().unwrap().len()
}

async fn the_same_key_and_body_get_the_stored_response_and_act_once(server: TestServer) {
    let a = server.tenant().await;
    let body = json!({"name": "once"});
    let first = post_with_key(&server, &a.key, "k-1", &body).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json(first, 201).await;
    let second = post_with_key(&server, &a.key, "k-1", &body).await;
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.headers()["content-type"], "application/json");
    assert_eq!(json(second, 201).await, first);
    assert_eq!(flow_count(&server, &a.key).await, 1);
}

async fn the_same_key_with_another_body_is_refused(server: TestServer) {
    let a = server.tenant().await;
    json(
        post_with_key(&server, &a.key, "k", &json!({"name": "a"})).await,
        201,
    )
    .await;
    let other = post_with_key(&server, &a.key, "k", &json!({"name": "b"})).await;
    problem(other, 422, "idempotency-key-reused").await;
    assert_eq!(flow_count(&server, &a.key).await, 1);
}

async fn a_stored_error_is_replayed_too(server: TestServer) {
    let a = server.tenant().await;
    let taken = json(
        server
            .post(&a.key, "/v1/flows", &json!({"name": "taken"}))
            .await,
        201,
    )
    .await;
    let body = json!({"name": "taken"});
    let refused = post_with_key(&server, &a.key, "k-err", &body).await;
    problem(refused, 409, "already-exists").await;
    // Even once the name is free, the key answers what it answered the first time.
    let path = format!("/v1/flows/{}", taken["id"].as_str().unwrap());
    assert_eq!(server.delete(&a.key, &path).await.status(), 204);
    let replayed = post_with_key(&server, &a.key, "k-err", &body).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    problem(replayed, 409, "already-exists").await;
    assert_eq!(flow_count(&server, &a.key).await, 0);
}

async fn a_key_still_in_flight_gets_409(server: TestServer) {
    let a = server.tenant().await;
    let body = json!({"name": "slow"});
    json(
        post_with_key(&server, &a.key, "warm-up", &json!({"name": "w"})).await,
        201,
    )
    .await;
    // Claim the key exactly as a first request does, and leave it unfinished.
    let scope = durable_control::Scope {
        workspace: a.workspace,
        actor: None,
    };
    let hash = request_hash_of(&body);
    let begun = server
        .backend
        .control
        .begin_idempotent(
            scope,
            durable_control::IdempotencyRequest {
                key: "in-flight",
                request_hash: &hash,
            },
            KEY_TTL,
        )
        .await
        .unwrap();
    assert_eq!(begun, IdempotencyBegin::Fresh);
    let second = post_with_key(&server, &a.key, "in-flight", &body).await;
    problem(second, 409, "idempotency-key-in-use").await;
    assert_eq!(flow_count(&server, &a.key).await, 1);
}

/// The hash the server computes for `POST /v1/flows` with `body` (it compares hashes before
/// it looks at whether the first request finished).
fn request_hash_of(body: &Value) -> [u8; 32] {
    durable_server::idempotency::request_hash(
        &axum::http::Method::POST,
        "/v1/flows",
        None,
        &serde_json::to_vec(body).unwrap(),
    )
}

async fn concurrent_duplicates_act_once(server: TestServer) {
    let a = server.tenant().await;
    let body = json!({"name": "raced"});
    let requests = (0..8).map(|_| post_with_key(&server, &a.key, "race", &body));
    let responses = futures::future::join_all(requests).await;
    let mut created = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            201 => created.push(response.json::<Value>().await.unwrap()["id"].clone()),
            409 => {
                problem(response, 409, "idempotency-key-in-use").await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(!created.is_empty());
    assert!(created.iter().all(|id| *id == created[0]), "{created:?}");
    assert_eq!(flow_count(&server, &a.key).await, 1);
}

async fn keys_are_per_workspace(server: TestServer) {
    let a = server.tenant().await;
    let b = server.tenant().await;
    let body = json!({"name": "same"});
    let in_a = json(post_with_key(&server, &a.key, "shared", &body).await, 201).await;
    let in_b = json(post_with_key(&server, &b.key, "shared", &body).await, 201).await;
    assert_ne!(in_a["id"], in_b["id"]);
    assert_eq!(in_b["workspace_id"], b.workspace.to_string());
}

/// After 24 hours a key is forgotten: the same key acts anew, even with another body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_acts_anew() {
    let server = TestServer::postgres().await;
    let a = server.tenant().await;
    json(
        post_with_key(&server, &a.key, "old", &json!({"name": "first"})).await,
        201,
    )
    .await;
    let db = server.db.as_ref().unwrap().client().await;
    let backdated = db
        .execute(
            "UPDATE durable.idempotency_keys SET created_at = now() - interval '24 hours 1 second'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(backdated, 1);
    let again = post_with_key(&server, &a.key, "old", &json!({"name": "second"})).await;
    assert!(again.headers().get("idempotent-replayed").is_none());
    assert_eq!(json(again, 201).await["name"], "second");
    assert_eq!(flow_count(&server, &a.key).await, 2);
}
