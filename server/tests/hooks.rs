//! Webhook intake: verification (Standard Webhooks, GitHub), dedupe on the delivery id,
//! secrets never shown again, limits and clear errors.

mod common;

use chrono::Utc;
use common::{Tenant, TestServer, json, problem};
use durable_connectors::webhook::{sign_github, sign_standard};
use reqwest::Response;
use serde_json::{Value, json};

with_server_on_both_stores!(
    a_signed_delivery_starts_the_workflow_and_a_redelivery_returns_the_same_run,
    bad_standard_signatures_are_refused,
    the_timestamp_window_is_five_minutes_each_way,
    rotated_secrets_are_all_accepted,
    github_signatures_are_verified,
    secrets_are_shown_once_and_never_again,
    oversized_malformed_and_unknown_deliveries_get_clear_errors,
    a_rotation_keeps_the_previous_secret_until_it_is_retired,
    a_client_cannot_take_a_deliverys_workflow_id,
    a_github_delivery_replayed_under_a_fresh_id_is_a_duplicate,
    the_dedupe_window_can_be_set_or_turned_off,
    github_secrets_are_bounded,
);

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_c2VjcmV0LXdpdGgtMjQtYnl0ZXMtbWluaW11bQ==";

async fn standard_hook(server: &TestServer, tenant: &Tenant, secrets: &[&str]) -> String {
    let body = json!({"workflow": "hello_hook", "scheme": "standard_webhooks", "secrets": secrets});
    let hook = json(server.post(&tenant.key, "/v1/hooks", &body).await, 201).await;
    assert!(hook.get("secret").is_none(), "a given secret is not echoed");
    hook["url"].as_str().unwrap().to_owned()
}

/// Sends `body` to `url` with Standard Webhooks headers.
async fn deliver(
    server: &TestServer,
    url: &str,
    id: &str,
    ts: i64,
    sig: &str,
    body: &str,
) -> Response {
    server
        .http
        .post(format!("{}{url}", server.base))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn signed(
    server: &TestServer,
    url: &str,
    secret: &str,
    id: &str,
    ts: i64,
    body: &str,
) -> Response {
    let sig = sign_standard(secret, id, ts, body.as_bytes()).unwrap();
    deliver(server, url, id, ts, &sig, body).await
}

async fn a_signed_delivery_starts_the_workflow_and_a_redelivery_returns_the_same_run(
    server: TestServer,
) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET]).await;
    let body = r#"{"action":"opened"}"#;
    let now = Utc::now().timestamp();
    let first = signed(&server, &url, SECRET, "msg_1", now, body).await;
    assert!(
        first.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v1/runs/")
    );
    let first = json(first, 202).await;
    assert_eq!(first["duplicate"], false);

    let again = json(
        signed(&server, &url, SECRET, "msg_1", now + 5, body).await,
        202,
    )
    .await;
    assert_eq!(again["run_id"], first["run_id"]);
    assert_eq!(again["duplicate"], true);

    let other = json(signed(&server, &url, SECRET, "msg_2", now, body).await, 202).await;
    assert_ne!(other["run_id"], first["run_id"]);

    let run_path = format!("/v1/runs/{}", first["run_id"].as_str().unwrap());
    let run = json(server.get(&a.key, &run_path).await, 200).await;
    assert_eq!(run["workflow_name"], "hello_hook");
    assert_eq!(run["input"]["delivery_id"], "msg_1");
    assert_eq!(run["input"]["payload"], json!({"action": "opened"}));

    // The run belongs to the hook's workspace only.
    let b = server.tenant().await;
    problem(server.get(&b.key, &run_path).await, 404, "not-found").await;
}

async fn bad_standard_signatures_are_refused(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET]).await;
    let body = r#"{"n":1}"#;
    let now = Utc::now().timestamp();
    let wrong = signed(&server, &url, OLD_SECRET, "m1", now, body).await;
    problem(wrong, 401, "invalid-signature").await;

    let empty = deliver(&server, &url, "m1", now, "v1,", body).await;
    problem(empty, 400, "malformed-signature").await;

    let good = sign_standard(SECRET, "m1", now, body.as_bytes()).unwrap();
    // 36 of the 44 base64 characters: valid base64 for 27 bytes, a signature cut short.
    let truncated = &good[..good.len() - 8];
    let cut = deliver(&server, &url, "m1", now, truncated, body).await;
    problem(cut, 401, "invalid-signature").await;

    let other_body = deliver(&server, &url, "m1", now, &good, r#"{"n":2}"#).await;
    problem(other_body, 401, "invalid-signature").await;

    let unsigned = server
        .http
        .post(format!("{}{url}", server.base))
        .body(body)
        .send()
        .await
        .unwrap();
    problem(unsigned, 400, "missing-signature-header").await;

    let runs = json(server.get(&a.key, "/v1/runs").await, 200).await;
    assert_eq!(runs, json!([]), "no refused delivery started a run");
}

async fn the_timestamp_window_is_five_minutes_each_way(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET]).await;
    let now = Utc::now().timestamp();
    for skew in [-301, 301] {
        let late = signed(&server, &url, SECRET, &format!("m{skew}"), now + skew, "{}").await;
        problem(late, 401, "timestamp-out-of-window").await;
    }
    // 290 s, not 300: the test and the server read the clock at slightly different times.
    for skew in [-290, 290] {
        let ok = signed(
            &server,
            &url,
            SECRET,
            &format!("ok{skew}"),
            now + skew,
            "{}",
        )
        .await;
        json(ok, 202).await;
    }
}

async fn rotated_secrets_are_all_accepted(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET, OLD_SECRET]).await;
    let now = Utc::now().timestamp();
    json(signed(&server, &url, SECRET, "new", now, "{}").await, 202).await;
    json(
        signed(&server, &url, OLD_SECRET, "old", now, "{}").await,
        202,
    )
    .await;

    let retired = standard_hook(&server, &a, &[SECRET]).await;
    let old = signed(&server, &retired, OLD_SECRET, "old", now, "{}").await;
    problem(old, 401, "invalid-signature").await;

    // Several signatures in one header (the sender rotating): one match suffices.
    let both = format!(
        "{} {}",
        sign_standard(OLD_SECRET, "pair", now, b"{}").unwrap(),
        sign_standard(SECRET, "pair", now, b"{}").unwrap()
    );
    json(
        deliver(&server, &retired, "pair", now, &both, "{}").await,
        202,
    )
    .await;
}

async fn github_signatures_are_verified(server: TestServer) {
    let a = server.tenant().await;
    let secret = "It's a Secret to Everybody";
    let body = json!({"workflow": "hello_hook", "scheme": "github", "secrets": [secret]});
    let hook = json(server.post(&a.key, "/v1/hooks", &body).await, 201).await;
    let url = format!("{}{}", server.base, hook["url"].as_str().unwrap());
    let payload = r#"{"zen":"Keep it logically awesome."}"#;
    let send = |signature: String, delivery: &'static str| {
        server
            .http
            .post(&url)
            .header("x-hub-signature-256", signature)
            .header("x-github-delivery", delivery)
            .body(payload)
            .send()
    };
    let ok = send(sign_github(secret, payload.as_bytes()), "d-1")
        .await
        .unwrap();
    let ok = json(ok, 202).await;
    let again = send(sign_github(secret, payload.as_bytes()), "d-1")
        .await
        .unwrap();
    assert_eq!(json(again, 202).await["run_id"], ok["run_id"]);

    let wrong = send(sign_github("another secret", payload.as_bytes()), "d-2")
        .await
        .unwrap();
    problem(wrong, 401, "invalid-signature").await;
    let good = sign_github(secret, payload.as_bytes());
    let truncated = send(good[..good.len() - 2].to_owned(), "d-3")
        .await
        .unwrap();
    problem(truncated, 401, "invalid-signature").await;
    let no_prefix = send(good["sha256=".len()..].to_owned(), "d-4")
        .await
        .unwrap();
    problem(no_prefix, 400, "malformed-signature").await;
}

async fn secrets_are_shown_once_and_never_again(server: TestServer) {
    let a = server.tenant().await;
    let body = json!({"workflow": "hello_hook", "scheme": "standard_webhooks"});
    let hook = json(server.post(&a.key, "/v1/hooks", &body).await, 201).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let url = hook["url"].as_str().unwrap().to_owned();

    let read = server.get(&a.key, &url).await.text().await.unwrap();
    let listed = server.get(&a.key, "/v1/hooks").await.text().await.unwrap();
    let audit = server.get(&a.key, "/v1/audit").await.text().await.unwrap();
    let key_part = &secret["whsec_".len()..];
    for text in [&read, &listed, &audit] {
        assert!(!text.contains(key_part), "secret leaked: {text}");
    }
    let now = Utc::now().timestamp();
    json(signed(&server, &url, &secret, "m", now, "{}").await, 202).await;

    let bad =
        json!({"workflow": "hello_hook", "scheme": "standard_webhooks", "secrets": ["short"]});
    problem(
        server.post(&a.key, "/v1/hooks", &bad).await,
        422,
        "invalid-secret",
    )
    .await;
    let unknown = json!({"workflow": "nope", "scheme": "none"});
    problem(
        server.post(&a.key, "/v1/hooks", &unknown).await,
        422,
        "unknown-workflow",
    )
    .await;
}

async fn oversized_malformed_and_unknown_deliveries_get_clear_errors(server: TestServer) {
    let a = server.tenant().await;
    let hook = json!({"workflow": "hello_hook", "scheme": "none"});
    let hook = json(server.post(&a.key, "/v1/hooks", &hook).await, 201).await;
    let url = format!("{}{}", server.base, hook["url"].as_str().unwrap());

    let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let response = server.http.post(&url).body(huge).send().await.unwrap();
    problem(response, 413, "body-too-large").await;
    let response = server
        .http
        .post(&url)
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(response, 400, "malformed-body").await;
    let missing = format!("{}/v1/hooks/{}", server.base, uuid::Uuid::now_v7());
    let response = server.http.post(&missing).body("{}").send().await.unwrap();
    problem(response, 404, "not-found").await;

    let runs = json(server.get(&a.key, "/v1/runs").await, 200).await;
    assert_eq!(runs, json!([]));
    json(server.http.post(&url).body("{}").send().await.unwrap(), 202).await;
}

async fn a_rotation_keeps_the_previous_secret_until_it_is_retired(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[OLD_SECRET]).await;
    let rotate = format!("{url}/rotate");
    let rotated = json(server.post(&a.key, &rotate, &json!({})).await, 200).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    let now = Utc::now().timestamp();
    json(signed(&server, &url, &new, "n1", now, "{}").await, 202).await;
    json(
        signed(&server, &url, OLD_SECRET, "o1", now, "{}").await,
        202,
    )
    .await;

    let retire = json!({"secret": SECRET, "keep_previous": 0});
    let retired = json(server.post(&a.key, &rotate, &retire).await, 200).await;
    assert!(
        retired.get("secret").is_none(),
        "a given secret is not echoed"
    );
    json(signed(&server, &url, SECRET, "n2", now, "{}").await, 202).await;
    for (old, id) in [(new.as_str(), "n3"), (OLD_SECRET, "o3")] {
        problem(
            signed(&server, &url, old, id, now, "{}").await,
            401,
            "invalid-signature",
        )
        .await;
    }

    let too_many = json!({"keep_previous": 5});
    problem(
        server.post(&a.key, &rotate, &too_many).await,
        422,
        "invalid-secret",
    )
    .await;
    let b = server.tenant().await;
    problem(
        server.post(&b.key, &rotate, &json!({})).await,
        404,
        "not-found",
    )
    .await;
    let audit = server.get(&a.key, "/v1/audit").await.text().await.unwrap();
    assert!(audit.contains("hook.rotate"));
    assert!(
        !audit.contains(&new["whsec_".len()..]),
        "no secret in the audit log"
    );
}

async fn a_client_cannot_take_a_deliverys_workflow_id(server: TestServer) {
    let a = server.tenant().await;
    let url = standard_hook(&server, &a, &[SECRET]).await;
    let hook_id = url.rsplit('/').next().unwrap().to_owned();
    let forged_id = format!("hook:{hook_id}:msg_1");
    let forged_event =
        json!({"hook_id": hook_id, "delivery_id": "msg_1", "payload": {"forged": true}});
    let forged = json!({"workflow": "hello_hook", "workflow_id": forged_id, "input": forged_event});
    let refused = server.post(&a.key, "/v1/runs", &forged).await;
    let refused = problem(refused, 422, "reserved-workflow-id").await;
    assert_eq!(refused["field"], "workflow_id");
    assert!(
        refused["detail"].as_str().unwrap().contains("`hook:`"),
        "{refused}"
    );

    // Nor through a fork of a run of its own.
    let own = json!({"workflow": "hello_hook", "input": forged_event});
    let own = json(server.post(&a.key, "/v1/runs", &own).await, 201).await;
    let fork = format!("/v1/runs/{}/fork", own["id"].as_str().unwrap());
    let fork_body = json!({"from_seq": 0, "workflow_id": forged_id});
    problem(
        server.post(&a.key, &fork, &fork_body).await,
        422,
        "reserved-workflow-id",
    )
    .await;

    // The genuine delivery starts its own run, with its own body.
    let body = r#"{"genuine":true}"#;
    let now = Utc::now().timestamp();
    let genuine = json(signed(&server, &url, SECRET, "msg_1", now, body).await, 202).await;
    assert_eq!(genuine["duplicate"], false);
    let run = format!("/v1/runs/{}", genuine["run_id"].as_str().unwrap());
    let run = json(server.get(&a.key, &run).await, 200).await;
    assert_eq!(run["workflow_id"], forged_id);
    assert_eq!(run["input"]["payload"], json!({"genuine": true}));
}

/// A GitHub hook with `secret`, and more of its creation request; its intake URL.
async fn github_hook(server: &TestServer, tenant: &Tenant, extra: Value) -> (String, Value) {
    let mut body =
        json!({"workflow": "hello_hook", "scheme": "github", "secrets": [GITHUB_SECRET]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let hook = json(server.post(&tenant.key, "/v1/hooks", &body).await, 201).await;
    let url = format!("{}{}", server.base, hook["url"].as_str().unwrap());
    (url, hook)
}

const GITHUB_SECRET: &str = "It's a Secret to Everybody";

/// Sends `body` to a GitHub hook, signed, as delivery `delivery`.
async fn github_delivery(server: &TestServer, url: &str, delivery: &str, body: &str) -> Value {
    let response = server
        .http
        .post(url)
        .header(
            "x-hub-signature-256",
            sign_github(GITHUB_SECRET, body.as_bytes()),
        )
        .header("x-github-delivery", delivery)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    json(response, 202).await
}

async fn a_github_delivery_replayed_under_a_fresh_id_is_a_duplicate(server: TestServer) {
    let a = server.tenant().await;
    let (url, hook) = github_hook(&server, &a, json!({})).await;
    assert_eq!(
        hook["dedupe_window"], "5m",
        "GitHub hooks dedupe by default"
    );
    let body = r#"{"action":"opened","number":1}"#;
    let first = github_delivery(&server, &url, "d-1", body).await;
    assert_eq!(first["duplicate"], false);

    // A captured delivery re-sent with a fresh delivery id verifies (GitHub signs the body
    // only), and is answered with the first delivery's run.
    let replayed = github_delivery(&server, &url, "d-2", body).await;
    assert_eq!(replayed["duplicate"], true);
    assert_eq!(replayed["run_id"], first["run_id"]);

    let other = github_delivery(&server, &url, "d-3", r#"{"action":"closed"}"#).await;
    assert_eq!(other["duplicate"], false);
    assert_ne!(other["run_id"], first["run_id"]);
    let runs = json(server.get(&a.key, "/v1/runs").await, 200).await;
    assert_eq!(runs.as_array().unwrap().len(), 2);
}

async fn the_dedupe_window_can_be_set_or_turned_off(server: TestServer) {
    let a = server.tenant().await;
    let (_, hour) = github_hook(&server, &a, json!({"dedupe_window": "1h"})).await;
    assert_eq!(hour["dedupe_window"], "1h");
    let (url, off) = github_hook(&server, &a, json!({"dedupe_window": "0s"})).await;
    assert_eq!(off["dedupe_window"], Value::Null);
    let body = r#"{"n":1}"#;
    let first = github_delivery(&server, &url, "e-1", body).await;
    let second = github_delivery(&server, &url, "e-2", body).await;
    assert_ne!(
        first["run_id"], second["run_id"],
        "off: every delivery id is a delivery"
    );

    // Any scheme may dedupe; none beyond a day.
    let standard = json!({"workflow": "hello_hook", "scheme": "none", "dedupe_window": "10m"});
    let standard = json(server.post(&a.key, "/v1/hooks", &standard).await, 201).await;
    assert_eq!(standard["dedupe_window"], "10m");
    for window in ["25h", "1.5s", "soon"] {
        let body = json!({"workflow": "hello_hook", "scheme": "github", "dedupe_window": window});
        let refused = server.post(&a.key, "/v1/hooks", &body).await;
        let refused = problem(refused, 422, "invalid-field").await;
        assert_eq!(refused["field"], "dedupe_window", "{window}");
    }
}

async fn github_secrets_are_bounded(server: TestServer) {
    let a = server.tenant().await;
    for secret in ["a".to_owned(), "x".repeat(900 * 1024), "x".repeat(257)] {
        let body = json!({"workflow": "hello_hook", "scheme": "github", "secrets": [secret]});
        let refused = server.post(&a.key, "/v1/hooks", &body).await;
        let refused = problem(refused, 422, "invalid-secret").await;
        assert_eq!(refused["field"], "secrets");
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("16 to 256 bytes")
        );
    }
    for secret in ["x".repeat(16), "x".repeat(256)] {
        let body = json!({"workflow": "hello_hook", "scheme": "github", "secrets": [secret]});
        json(server.post(&a.key, "/v1/hooks", &body).await, 201).await;
    }
    let (_, hook) = github_hook(&server, &a, json!({})).await;
    let rotate = format!("/v1/hooks/{}/rotate", hook["id"].as_str().unwrap());
    let refused = server
        .post(&a.key, &rotate, &json!({"secret": "short"}))
        .await;
    let refused = problem(refused, 422, "invalid-secret").await;
    assert_eq!(refused["field"], "secret");
}
